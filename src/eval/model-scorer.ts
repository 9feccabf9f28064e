import { selectBackend } from '../backend/backend.js';
import { BACKEND_NAMES, isBackendName } from '../backend/backend-names.js';
import { loadScoringModel, scoreSamples } from './score.js';
import type { StepScorer } from './step-scorer.js';

export interface OpenScorerOptions {
  backend?: string;
  /** Padded tokens per forward batch (scoreSamples' maxTokensPerBatch). */
  batchTokens?: number;
}

/**
 * A StepScorer over a PRM checkpoint directory: selects the backend, loads weights and
 * tokenizer (checked against each other by loadScoringModel), and scores every step of a
 * response in one forward pass through the batched scoreSamples.
 */
export async function openStepScorer(dir: string, opts: OpenScorerOptions = {}): Promise<StepScorer> {
  const requested = opts.backend ?? 'auto';
  if (!isBackendName(requested)) throw new Error(`unknown backend "${requested}" (choose one of ${BACKEND_NAMES.join(', ')})`);
  const backend = await selectBackend(requested);
  const { model, tokenizer } = await loadScoringModel(dir);
  return {
    backend: backend.name,
    score(samples, label) {
      return scoreSamples(model, tokenizer, samples, { maxTokensPerBatch: opts.batchTokens, ...(label === null ? {} : { progressLabel: label ?? 'score' }) });
    },
    dispose() {
      model.dispose();
    },
  };
}
