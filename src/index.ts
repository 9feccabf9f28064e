/**
 * prmkit as a library: `import { loadScoringModel, scoreSteps, gradeAnswer, ... } from 'prmkit'`.
 * Everything here is also what the CLI uses; this file only chooses the public surface (and
 * adds scoreSteps, the one-call way to score steps).
 */
import { selectBackend, type BackendName } from './backend/backend.js';
import { loadScoringModel, SampleError, scoreSamples, type ScoreInput, type ScoreOptions } from './eval/score.js';
import type { LoadedScoringModel } from './serve/server.js';

// Models: checkpoints, the PRM, its tokenizer and THE sample encoding.
export { loadPrm, savePrmCheckpoint, type LoadedPrm, type LoadPrmOptions, type CheckpointFiles } from './model/checkpoint.js';
export { PrmModel, initPrm, type FreezeOptions } from './model/prm.js';
export { PrmTokenizer, DEFAULT_STEP_TOKEN, CHATML_TEMPLATE, type PrmTokenizerOptions } from './model/tokenizer.js';
export { buildWordLevelTokenizer } from './model/word-tokenizer.js';
export { parseHfConfig, toHfConfig, ConfigError, type Qwen2Config } from './model/config.js';
export { encodeSample, collateBatch, bucketByLength, EncodeError, DEFAULT_SYSTEM_PROMPT, type EncodedSample, type EncodeOptions, type CollatedBatch } from './model/encode.js';
export { selectBackend, backendInfo, BACKEND_NAMES, BackendUnavailableError, type BackendName, type BackendInfo, type BackendSelection } from './backend/backend.js';

// Scoring.
export { scoreSamples, loadScoringModel, SampleError, DEFAULT_MAX_TOKENS_PER_BATCH, type ScoreInput, type ScoreOptions, type ScoreResult } from './eval/score.js';

// Answer grading.
export { gradeAnswer, extractAnswer, isEquivalent, goldAnswerFrom, normalizeAnswer, type GradeOptions, type GradeResult, type ExtractOptions, type EquivalenceOptions } from './math/index.js';

// Evaluation.
export {
  evaluateProcessBench,
  processBenchMetrics,
  bonMetrics,
  aggregateScore,
  AGGREGATORS,
  type Aggregator,
  type ProcessBenchReport,
  type ProcessBenchPrediction,
  type ProcessBenchMetrics,
  type BonMetrics,
  type BonMetricsOptions,
  type GradedProblem,
  type GradedResponse,
} from './eval/index.js';

// Data.
export { readStepSamples, readAllStepSamples, openStepSamples, writeStepSamples, readJsonl, JsonlWriter, RecordError, validateStepSample, DATA_FORMATS, type StepSample, type DataFormat, type ReadOptions, type ReadStats } from './data/index.js';

// The reward server.
export { startRewardServer, DEFAULT_LIMITS, DEFAULT_BATCHING, type RewardServer, type RewardServerOptions, type RewardServerStats, type LoadedScoringModel, type ServeLimits, type BatchingOptions } from './serve/index.js';

export interface ScoreStepsOptions extends Pick<ScoreOptions, 'maxTokensPerBatch' | 'maxLength' | 'systemPrompt'> {
  /** Backend selected before loading a checkpoint directory (default auto); ignored for a loaded model. */
  backend?: BackendName;
}

/**
 * Step scores of {problem, steps} samples, one list per sample, one score in [0, 1] per step.
 * `prm` is a checkpoint directory (loaded for this call and freed after it) or a model from
 * loadScoringModel (kept: load once when scoring repeatedly). A sample longer than the model's
 * context (or maxLength) throws a SampleError naming it; nothing is cut silently.
 */
export async function scoreSteps(prm: string | LoadedScoringModel, samples: readonly ScoreInput[], opts: ScoreStepsOptions = {}): Promise<number[][]> {
  const { backend, ...scoreOpts } = opts;
  if (typeof prm !== 'string') return scoreLoaded(prm, samples, scoreOpts);
  await selectBackend(backend ?? 'auto');
  const loaded = await loadScoringModel(prm);
  try {
    return await scoreLoaded(loaded, samples, scoreOpts);
  } finally {
    loaded.model.dispose();
  }
}

async function scoreLoaded(prm: LoadedScoringModel, samples: readonly ScoreInput[], opts: ScoreOptions): Promise<number[][]> {
  const { stepScores, tooLong } = await scoreSamples(prm.model, prm.tokenizer, samples, opts);
  if (tooLong.length > 0) {
    const limit = opts.maxLength === undefined ? `the model's context of ${prm.model.config.maxPositionEmbeddings}` : `maxLength ${opts.maxLength}`;
    const more = tooLong.length > 1 ? ` (and ${tooLong.length - 1} more samples)` : '';
    throw new SampleError(tooLong[0], undefined, `more tokens than ${limit}${more}`);
  }
  return stepScores as number[][];
}
