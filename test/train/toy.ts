// Shared by the trainer tests: a toy labelled world and a tiny PRM, built through the same
// code the `run` stages use (word-level tokenizer, scratch config, encodeSample, prepareItems).
import type { StepSample } from '../../src/data/types.js';
import { encodeSample } from '../../src/model/encode.js';
import type { PrmModel } from '../../src/model/prm.js';
import type { PrmTokenizer } from '../../src/model/tokenizer.js';
import { TokenizerSchema, ModelSchema, TrainSchema, type TrainConfig } from '../../src/recipes/schema.js';
import { buildTokenizer, createModel, type TokenizerFiles } from '../../src/run/model-setup.js';
import { prepareItems, type TrainItem } from '../../src/train/batches.js';
import { Rng } from '../../src/util/rng.js';
import { prmModelIo } from '../../src/train/model-io.js';
import { trainModel } from '../../src/train/trainer.js';

const WORDS = ['add', 'the', 'apples', 'to', 'pears', 'then', 'count', 'all', 'of', 'them'];

/**
 * Solutions whose steps are a few words; a step is wrong when it contains "wrong". Labels are
 * MC-style: 1 up to the first wrong step, 0 there, later steps dropped.
 */
export function toySamples(n: number, seed: number): StepSample[] {
  const rng = new Rng(seed);
  const out: StepSample[] = [];
  for (let i = 0; i < n; i++) {
    const nSteps = rng.int(2, 4);
    const steps: string[] = [];
    let firstError = -1;
    for (let j = 0; j < nSteps; j++) {
      const words = Array.from({ length: rng.int(2, 4) }, () => rng.pick(WORDS));
      if (rng.bernoulli(0.25)) {
        words.splice(rng.int(0, words.length), 0, 'wrong');
        if (firstError < 0) firstError = j;
      }
      steps.push(words.join(' '));
    }
    const labels = firstError < 0 ? steps.map(() => 1) : [...steps.slice(0, firstError).map(() => 1), 0];
    out.push({ id: `toy-${seed}-${i}`, problem: `problem ${i % 7}`, steps, labels, firstError, source: 'toy', meta: {} });
  }
  return out;
}

export interface ToySetup {
  tokenizer: PrmTokenizer;
  files: TokenizerFiles;
  model: PrmModel;
  train: TrainItem[];
  dev: TrainItem[];
}

export async function toySetup(opts: { nTrain?: number; nDev?: number; seed?: number; hidden?: number; layers?: number } = {}): Promise<ToySetup> {
  const trainSamples = toySamples(opts.nTrain ?? 48, 1);
  const devSamples = toySamples(opts.nDev ?? 16, 2);
  const corpus = () => [...trainSamples, ...devSamples].flatMap((s) => [s.problem, ...s.steps, 'wrong']);
  const { tokenizer, files } = await buildTokenizer(TokenizerSchema.parse({}), corpus, '.');
  const modelCfg = ModelSchema.parse({
    config: { hidden_size: opts.hidden ?? 16, num_hidden_layers: opts.layers ?? 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 32 },
  });
  const model = await createModel(modelCfg, tokenizer, opts.seed ?? 0, '.');
  const encode = (s: { problem: string; steps: string[] }) => encodeSample(tokenizer, s, { maxLength: 256 });
  const prep = { truncation: 'keep-first-steps' as const, labelMode: 'hard' as const };
  return {
    tokenizer,
    files,
    model,
    train: prepareItems(trainSamples, encode, prep).items,
    dev: prepareItems(devSamples, encode, prep).items,
  };
}

export function toyTrainConfig(overrides: Record<string, unknown> = {}): TrainConfig {
  return TrainSchema.parse({
    epochs: 2,
    lr: 1e-2,
    schedule: 'cosine',
    warmup_steps: 2,
    batch_size: 8,
    max_tokens_per_batch: 4096,
    eval_every: 4,
    save_every: 4,
    keep_last: 2,
    log_every: 1,
    ...overrides,
  });
}

/**
 * Trains a toy setup into outDir: to the end, or (stopAfter) interrupted right after that
 * optimizer step, as a kill would leave the run directory; `resume` continues such a run.
 */
export async function trainToy(
  setup: ToySetup,
  config: TrainConfig,
  outDir: string,
  opts: { stopAfter?: number; resume?: boolean; restart?: boolean; log?: (line: string) => void; adapterBase?: string } = {},
): Promise<Awaited<ReturnType<typeof trainModel>> | null> {
  class Stop extends Error {}
  try {
    return await trainModel({
      model: setup.model, io: prmModelIo(setup.model, setup.files, { adapterBase: opts.adapterBase }), train: setup.train, dev: setup.dev, config, outDir,
      padTokenId: setup.tokenizer.padTokenId, log: opts.log ?? (() => {}), progress: false, resume: opts.resume, restart: opts.restart,
      afterStep: (s) => {
        if (s === opts.stopAfter) throw new Stop();
      },
    });
  } catch (e) {
    if (e instanceof Stop) return null;
    throw e;
  }
}
