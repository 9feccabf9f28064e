import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDataFormat } from '../data/formats.js';
import { detectFormat, openStepSamples, type DataFormat } from '../data/read.js';
import { writeStepSamples } from '../data/write.js';
import type { StepSample } from '../data/types.js';
import type { DataConfig } from '../recipes/schema.js';
import { simProblems, simSolutions, type SimWorldOptions } from '../sim/world.js';
import { recipePath, type RunContext } from './context.js';

/** RUN/data/samples.jsonl: the step samples every later stage reads. */
export const SAMPLES_FILE = join('data', 'samples.jsonl');

export interface DataSummary {
  source: 'sim' | 'file';
  path: string;
  samples: number;
  problems: number;
  /** Samples whose known first error is not -1 (sim: the truth). */
  with_error: number | null;
  /** file: what the reader saw (records, rejected, dropped steps). */
  read?: { path: string; format: string; records: number; rejected: number; droppedSteps: number };
}

/** The sim world knobs of a recipe as src/sim options. */
export function simWorldOptions(w: DataConfig['world']): SimWorldOptions {
  const problem: NonNullable<SimWorldOptions['problem']> = {};
  if (w.min_steps !== undefined) problem.minSteps = w.min_steps;
  if (w.max_steps !== undefined) problem.maxSteps = w.max_steps;
  if (w.start_min !== undefined) problem.startMin = w.start_min;
  if (w.start_max !== undefined) problem.startMax = w.start_max;
  if (w.add_max !== undefined) problem.addMax = w.add_max;
  if (w.mul_max !== undefined) problem.mulMax = w.mul_max;
  if (w.max_value !== undefined) problem.maxValue = w.max_value;
  if (w.ops !== undefined) problem.ops = w.ops;
  const policy: NonNullable<SimWorldOptions['policy']> = {};
  if (w.policy_strength !== undefined) policy.strength = w.policy_strength;
  if (w.recovery_scale !== undefined) policy.recoveryScale = w.recovery_scale;
  if (w.difficulty_spread !== undefined) policy.difficultySpread = w.difficulty_spread;
  const judge: NonNullable<SimWorldOptions['judge']> = {};
  if (w.judge_false_alarm_rate !== undefined) judge.falseAlarmRate = w.judge_false_alarm_rate;
  return { problem, policy, judge };
}

function problemKey(s: StepSample): string {
  const id = s.meta.problemId;
  return typeof id === 'string' ? id : s.problem;
}

/** Generates sim problems and policy solutions, or reads a data file, into RUN/data/samples.jsonl. */
export async function runDataStage(ctx: RunContext, cfg: DataConfig): Promise<DataSummary> {
  mkdirSync(join(ctx.runDir, 'data'), { recursive: true });
  const out = join(ctx.runDir, SAMPLES_FILE);
  if (cfg.source === 'sim') {
    const world = simWorldOptions(cfg.world);
    const problems = simProblems(cfg.problems, ctx.recipe.seed, world);
    let samples = simSolutions(problems, cfg.responses_per_problem, ctx.recipe.seed, world);
    if (cfg.limit !== undefined) samples = samples.slice(0, cfg.limit);
    await writeStepSamples(out, samples, 'jsonl');
    const withError = samples.filter((s) => s.firstError !== undefined && s.firstError !== -1).length;
    ctx.log(`data: ${samples.length} sim solutions of ${problems.length} problems (${withError} with a process error) -> ${out}`);
    return { source: 'sim', path: SAMPLES_FILE, samples: samples.length, problems: problems.length, with_error: withError };
  }
  const path = recipePath(ctx, cfg.path as string);
  let format: DataFormat;
  if (cfg.format === 'auto') {
    const detected = await detectFormat(path);
    if (!detected.format) throw new Error(`data.path ${path}: cannot tell the record layout from the first record; set data.format`);
    format = detected.format;
  } else if (isDataFormat(cfg.format)) {
    format = cfg.format;
  } else {
    throw new Error(`data.format "${cfg.format}" is not a known format`);
  }
  const { samples, stats } = openStepSamples(path, {
    format,
    onBadRecord: cfg.on_bad_record,
    rejectsPath: join(ctx.runDir, 'data', 'rejects.jsonl'),
    remedy: 'Fix them, or set data.on_bad_record: skip in the recipe to write them to RUN/data/rejects.jsonl and go on.',
    onReject: (err) => ctx.log(`data: skipped bad record ${err.message}`),
  });
  const problems = new Set<string>();
  let withError = 0;
  let known = 0;
  async function* limited(): AsyncGenerator<StepSample> {
    let n = 0;
    for await (const s of samples) {
      if (cfg.limit !== undefined && n >= cfg.limit) break;
      n++;
      problems.add(problemKey(s));
      if (s.firstError !== undefined) {
        known++;
        if (s.firstError !== -1) withError++;
      }
      yield s;
    }
  }
  const written = await writeStepSamples(out, limited(), 'jsonl');
  ctx.log(`data: ${written} samples read from ${path} (${format}; ${stats.records} records, ${stats.rejected} rejected, ${stats.droppedSteps} steps dropped by the reader)`);
  return {
    source: 'file',
    path: SAMPLES_FILE,
    samples: written,
    problems: problems.size,
    with_error: known > 0 ? withError : null,
    read: { path, format, records: stats.records, rejected: stats.rejected, droppedSteps: stats.droppedSteps },
  };
}
