import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStepSamples } from '../data/read.js';
import type { StepSample } from '../data/types.js';
import { encodeSample } from '../model/encode.js';
import { ModelSchema, TokenizerSchema, type Recipe, type TrainConfig } from '../recipes/schema.js';
import { Rng } from '../util/rng.js';
import { formatPrepareReport, prepareItems, type PrepareReport } from '../train/batches.js';
import { prmModelIo } from '../train/model-io.js';
import { trainModel } from '../train/trainer.js';
import { pretrainCausalLm, type LmPretrainResult } from '../train/lm-pretrain.js';
import { latestValidCheckpoint, listCheckpoints } from '../train/checkpoints.js';
import type { BestMetric } from '../train/checkpoints.js';
import type { DevMetrics } from '../train/dev-metrics.js';
import type { RunContext } from './context.js';
import { buildTokenizer, createModel, pretrainedDir } from './model-setup.js';

export interface TrainSummary {
  train_file: string;
  items: { train: number; dev: number };
  prepare: { train: PrepareReport; dev: PrepareReport };
  tokenizer: { kind: string; vocab_size: number; dir: string };
  model: { init: string; parameters: number; config: Record<string, unknown> };
  /** Causal-LM pretraining before PRM training (model.pretrain_lm), when the recipe asks for it. */
  pretrain_lm?: LmPretrainResult | { skipped: string };
  steps: number;
  total_steps: number;
  stopped_early: boolean;
  best: BestMetric | null;
  last_dev: DevMetrics | null;
  final_dir: string;
  final_from: { step: number; kind: 'best' | 'last' };
  seconds: number;
}

async function readSamples(path: string): Promise<StepSample[]> {
  const out: StepSample[] = [];
  for await (const s of openStepSamples(path, { format: 'prmkit' }).samples) out.push(s);
  return out;
}

function problemKey(s: StepSample): string {
  const id = s.meta.problemId;
  return typeof id === 'string' ? id : s.problem;
}

/** Train/dev split by problem (all solutions of a problem on one side), seeded. */
export function splitByProblem(samples: readonly StepSample[], devFraction: number, seed: number): { train: StepSample[]; dev: StepSample[] } {
  if (devFraction <= 0) return { train: [...samples], dev: [] };
  const keys = [...new Set(samples.map(problemKey))];
  new Rng(seed).fork('dev-split').shuffle(keys);
  const devKeys = new Set(keys.slice(0, Math.max(1, Math.round(keys.length * devFraction))));
  return { train: samples.filter((s) => !devKeys.has(problemKey(s))), dev: samples.filter((s) => devKeys.has(problemKey(s))) };
}

/** The train/dev split of a labelled file, exactly as the train stage makes it. */
export async function readLabelledSplit(runDir: string, file: string, devFraction: number, seed: number): Promise<{ train: StepSample[]; dev: StepSample[] }> {
  return splitByProblem(await readSamples(join(runDir, file)), devFraction, seed);
}

/**
 * Builds the tokenizer (word-level from the run's corpus by default) and the model, encodes the
 * labelled samples with the one encode(), reports truncation at the start, and trains.
 */
export async function runTrainStage(
  ctx: RunContext,
  recipe: Recipe,
  cfg: TrainConfig,
  files: { labelled: string; corpus: string },
): Promise<TrainSummary> {
  const seed = cfg.seed ?? recipe.seed;
  const { train, dev } = await readLabelledSplit(ctx.runDir, files.labelled, cfg.dev_fraction, seed);
  if (train.length === 0) throw new Error(`no training samples in ${files.labelled}`);

  const tokCfg = recipe.tokenizer ?? TokenizerSchema.parse({});
  const corpusSamples = await readSamples(join(ctx.runDir, files.corpus));
  const { tokenizer, files: tokFiles } = await buildTokenizer(tokCfg, () => corpusSamples.flatMap((s) => [s.problem, ...s.steps]), ctx.baseDir);
  // Data-parallel workers other than rank 0 build the same tokenizer and write nothing.
  if (!ctx.parallel || ctx.parallel.rank === 0) {
    const tokDir = join(ctx.runDir, 'tokenizer');
    mkdirSync(tokDir, { recursive: true });
    writeFileSync(join(tokDir, 'tokenizer.json'), tokFiles.tokenizerJson);
    writeFileSync(join(tokDir, 'tokenizer_config.json'), tokFiles.tokenizerConfigJson);
  }

  const modelCfg = recipe.model ?? ModelSchema.parse({});
  const model = await createModel(modelCfg, tokenizer, seed, ctx.baseDir, { progress: ctx.progress });
  try {
    const maxLength = Math.min(cfg.max_length, model.config.maxPositionEmbeddings);
    const encode = (s: { problem: string; steps: string[] }) => encodeSample(tokenizer, s, { maxLength });
    const prep = { truncation: cfg.truncation, labelMode: cfg.label_mode };
    const trainPrep = prepareItems(train, encode, prep);
    const devPrep = prepareItems(dev, encode, prep);
    ctx.log(formatPrepareReport('train', trainPrep.report, maxLength, cfg.truncation));
    if (dev.length > 0) ctx.log(formatPrepareReport('dev', devPrep.report, maxLength, cfg.truncation));
    if (trainPrep.items.length === 0) throw new Error('no trainable samples left after encoding (see the counts above)');

    let pretrain: TrainSummary['pretrain_lm'];
    if (modelCfg.pretrain_lm) {
      const root = join(ctx.runDir, 'checkpoints');
      // --restart with no checkpoint that verifies trains from step 0: pretraining runs again.
      const resumable = ctx.resume && (await listCheckpoints(root)).length > 0 && (!ctx.restart || (await latestValidCheckpoint(root)) !== null);
      if (resumable) {
        // PRM training resumes from a checkpoint, which holds the weights pretraining led to.
        pretrain = { skipped: 'PRM training resumes from a checkpoint' };
      } else {
        // The unlabelled solutions of the training problems (every source solution, also those
        // label filtering dropped; none of a dev problem), in the PRM's own encoding.
        const devProblems = new Set(dev.map(problemKey));
        const texts = corpusSamples.filter((s) => !devProblems.has(problemKey(s)));
        const sequences = texts.map((s) => Int32Array.from(encode(s).inputIds));
        ctx.log(`pretrain: causal LM on ${sequences.length} unlabelled solutions of the training problems`);
        pretrain = await pretrainCausalLm({ model, sequences, config: modelCfg.pretrain_lm, padTokenId: tokenizer.padTokenId, seed, log: ctx.log, progress: ctx.progress });
        ctx.log(`pretrain: ${pretrain.steps} steps, ${pretrain.tokens} tokens, next-token loss ${pretrain.first_loss.toFixed(3)} -> ${pretrain.last_loss.toFixed(3)} in ${pretrain.seconds.toFixed(1)} s`);
      }
    }

    // Every data-parallel worker starts from rank 0's weights (a resumed run then restores the same checkpoint in all).
    if (ctx.parallel) await ctx.parallel.syncWeights(model.variables.values());
    const result = await trainModel({
      model,
      io: prmModelIo(model, tokFiles, { maxShardBytes: cfg.max_shard_bytes, adapterBase: modelCfg.lora ? pretrainedDir(modelCfg, ctx.baseDir) : undefined }),
      train: trainPrep.items,
      dev: devPrep.items,
      config: cfg,
      outDir: ctx.runDir,
      padTokenId: tokenizer.padTokenId,
      seed,
      resume: ctx.resume,
      restart: ctx.restart,
      log: ctx.log,
      progress: ctx.progress,
      parallel: ctx.parallel?.role,
    });
    return {
      train_file: files.labelled,
      items: { train: trainPrep.items.length, dev: devPrep.items.length },
      prepare: { train: trainPrep.report, dev: devPrep.report },
      tokenizer: { kind: tokCfg.kind, vocab_size: tokenizer.vocabSize, dir: 'tokenizer' },
      model: { init: modelCfg.init, parameters: model.numParameters(), config: { ...model.config } },
      ...(pretrain ? { pretrain_lm: pretrain } : {}),
      steps: result.steps,
      total_steps: result.totalSteps,
      stopped_early: result.stoppedEarly,
      best: result.best,
      last_dev: result.lastDev,
      final_dir: join('checkpoints', 'final'),
      final_from: result.finalFrom,
      seconds: result.seconds,
    };
  } finally {
    model.dispose();
  }
}
