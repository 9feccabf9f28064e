import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { labelsFromFirstError } from '../data/adapter.js';
import { openStepSamples } from '../data/read.js';
import type { StepSample } from '../data/types.js';
import { writeStepSamples } from '../data/write.js';
import { consensus, type ConsensusStats } from '../labels/consensus.js';
import { labelJudge, type JudgeStats } from '../labels/judge.js';
import { labelMc, type McStats } from '../labels/mc.js';
import { computeLabelStats, type LabelQuality } from '../labels/stats.js';
import type { ConsensusLabelsConfig, JudgeLabelsConfig, LabelMethod, LabelsConfig, McLabelsConfig } from '../recipes/schema.js';
import { startSimServer, type SimServer } from '../sim/server.js';
import { writeFileAtomic } from '../util/durable-fs.js';
import { percent } from '../util/format.js';
import type { RunContext } from './context.js';
import { SAMPLES_FILE, simWorldOptions } from './data-stage.js';

/** One labeling's headline figures for the report (full stats stay in labels/<method>.stats.json). */
export interface LabelSourceSummary {
  file: string;
  input: number;
  output: number;
  retention: number | null;
  /** First-error precision / recall / F1 against the sim truth (fractions), when known. */
  precision: number | null;
  recall: number | null;
  f1: number | null;
  requests?: number;
  cache_hits?: number;
  retries?: number;
}

export interface LabelsSummary {
  method: LabelMethod;
  /** The labelled samples the train stage reads (relative to the run directory). */
  train_file: string;
  sources: Record<string, LabelSourceSummary>;
  endpoint: string;
}

function fromQuality(q: LabelQuality): Pick<LabelSourceSummary, 'precision' | 'recall' | 'f1'> {
  return { precision: q.truth?.precision ?? null, recall: q.truth?.recall ?? null, f1: q.truth?.f1 ?? null };
}

/** A labeling that asked a model server: its client counters too. */
function askedSummary(file: string, s: McStats | JudgeStats): LabelSourceSummary {
  return { file, input: s.input, output: s.output, retention: s.retention, ...fromQuality(s.quality), requests: s.client.requests, cache_hits: s.client.cacheHits, retries: s.client.retries };
}

function consensusSummary(file: string, s: ConsensusStats): LabelSourceSummary {
  return { file, input: s.samples, output: s.kept, retention: s.retention, ...fromQuality(s.quality.consensus) };
}

async function labelsOf(path: string): Promise<{ n: number; labelled: number; quality: LabelQuality }> {
  const samples = [];
  for await (const s of openStepSamples(path, { format: 'prmkit' }).samples) samples.push(s);
  return { n: samples.length, labelled: samples.filter((s) => s.labels && s.labels.length > 0).length, quality: computeLabelStats(samples) };
}

/** Where a labeling reads (RUN/data/samples.jsonl) and writes (RUN/labels). */
interface LabelsIo {
  ctx: RunContext;
  dir: string;
  input: string;
}

/** Where `given` writes samples whose labels it derived from their first-error index. */
const GIVEN_FILE = 'labels/given.jsonl';

/**
 * truth and given: the labels the samples already carry. `given` also takes a first-error index
 * (ProcessBench-style records) as the hard labels it implies, written to labels/given.jsonl.
 */
async function dataLabels(io: LabelsIo, method: 'truth' | 'given'): Promise<LabelsSummary> {
  let trainFile = SAMPLES_FILE;
  if (method === 'given') {
    const samples: StepSample[] = [];
    let derived = 0;
    for await (const s of openStepSamples(io.input, { format: 'prmkit' }).samples) {
      if ((!s.labels || s.labels.length === 0) && s.firstError !== undefined && s.steps.length > 0) {
        // Steps after the first error carry no label: they are dropped, as MC labeling drops them.
        const labels = labelsFromFirstError(s.steps.length, s.firstError);
        samples.push({ ...s, steps: s.steps.slice(0, labels.length), labels });
        derived++;
      } else samples.push(s);
    }
    if (derived > 0) {
      mkdirSync(io.dir, { recursive: true });
      await writeStepSamples(join(io.ctx.runDir, GIVEN_FILE), samples, 'jsonl');
      io.ctx.log(`labels: ${derived} samples carry a first-error index and no step labels: labelled 1 before it and 0 at it, later steps dropped (${GIVEN_FILE})`);
      trainFile = GIVEN_FILE;
    }
  }
  const { n, labelled, quality } = await labelsOf(join(io.ctx.runDir, trainFile));
  if (labelled === 0) throw new Error(`labels.method ${method}: the data in ${io.input} carries no step labels (and no first-error index)`);
  if (method === 'truth' && !quality.truth) {
    throw new Error(`labels.method truth needs samples with a known truth (the sim world); use "given" for labels from a file`);
  }
  io.ctx.log(`labels: using the ${method} labels of ${labelled}/${n} samples`);
  return {
    method,
    train_file: trainFile,
    endpoint: 'none',
    sources: { [method]: { file: trainFile, input: n, output: labelled, retention: n > 0 ? labelled / n : null, ...fromQuality(quality) } },
  };
}

type ServerLabelsConfig = McLabelsConfig | JudgeLabelsConfig | ConsensusLabelsConfig;

/** The policy and judge URLs of a labeling that asks model servers. */
interface Endpoints {
  policy: string;
  judge: string;
}

/**
 * Runs `steps` against the recipe's endpoints (`sim`: the sim server, started here on loopback
 * and closed after), and summarises what they labelled; the method's own step writes the file
 * training reads.
 */
async function withServers(io: LabelsIo, cfg: ServerLabelsConfig, steps: (endpoints: Endpoints) => Promise<Record<string, LabelSourceSummary>>): Promise<LabelsSummary> {
  const { ctx } = io;
  const judgeEndpoint = cfg.method === 'mc' ? cfg.endpoint : (cfg.judge_endpoint ?? cfg.endpoint);
  let server: SimServer | undefined;
  if (cfg.endpoint === 'sim' || judgeEndpoint === 'sim') {
    const faults = cfg.sim_faults;
    server = await startSimServer({
      seed: ctx.recipe.seed,
      faultRate: faults?.error_rate,
      latencyMs: faults?.latency_ms,
      malformedRate: faults?.malformed_rate,
      // The policy that completes rollouts is the one that wrote the sim data.
      policy: ctx.recipe.data?.source === 'sim' ? simWorldOptions(ctx.recipe.data.world).policy : undefined,
      judge: ctx.recipe.data?.source === 'sim' ? simWorldOptions(ctx.recipe.data.world).judge : undefined,
    });
    ctx.log(`labels: sim server listening on ${server.url}`);
  }
  const url = (endpoint: string) => (endpoint === 'sim' ? server!.url : endpoint);
  try {
    const sources = await steps({ policy: url(cfg.endpoint), judge: url(judgeEndpoint) });
    return { method: cfg.method, train_file: sources[cfg.method].file, sources, endpoint: cfg.endpoint === 'sim' ? 'sim (in-process server over HTTP)' : cfg.endpoint };
  } finally {
    await server?.close();
  }
}

function clientOptions(io: LabelsIo, cfg: ServerLabelsConfig) {
  return { cacheDir: join(io.dir, 'cache'), concurrency: cfg.concurrency, progress: io.ctx.progress, input: io.input, format: 'prmkit' as const };
}

async function writeStats(io: LabelsIo, name: string, stats: unknown): Promise<void> {
  await writeFileAtomic(join(io.dir, `${name}.stats.json`), JSON.stringify(stats, null, 2) + '\n');
}

async function mcStep(io: LabelsIo, cfg: McLabelsConfig | ConsensusLabelsConfig, endpoint: string): Promise<LabelSourceSummary> {
  const stats = await labelMc({
    ...clientOptions(io, cfg),
    endpoint,
    out: join(io.dir, 'mc.jsonl'),
    model: cfg.policy_model,
    rollouts: cfg.rollouts,
    threshold: cfg.threshold,
    labels: cfg.mc_labels,
    search: cfg.search,
    seed: io.ctx.recipe.seed,
  });
  await writeStats(io, 'mc', stats);
  const summary = askedSummary(join('labels', 'mc.jsonl'), stats);
  io.ctx.log(`labels: mc ${stats.output}/${stats.input} samples, ${stats.rollouts} rollouts, first-error precision ${percent(summary.precision)}`);
  return summary;
}

async function judgeStep(io: LabelsIo, cfg: JudgeLabelsConfig | ConsensusLabelsConfig, endpoint: string): Promise<LabelSourceSummary> {
  const stats = await labelJudge({ ...clientOptions(io, cfg), endpoint, out: join(io.dir, 'judge.jsonl'), model: cfg.judge_model, seed: io.ctx.recipe.seed });
  await writeStats(io, 'judge', stats);
  const summary = askedSummary(join('labels', 'judge.jsonl'), stats);
  io.ctx.log(`labels: judge ${stats.output}/${stats.input} samples (${stats.unparsable} unparsable), first-error precision ${percent(summary.precision)}`);
  return summary;
}

async function consensusStep(io: LabelsIo): Promise<LabelSourceSummary> {
  const stats = await consensus({
    mc: join(io.dir, 'mc.jsonl'),
    judge: join(io.dir, 'judge.jsonl'),
    out: join(io.dir, 'consensus.jsonl'),
    dropped: join(io.dir, 'consensus.dropped.jsonl'),
    progress: io.ctx.progress,
  });
  await writeStats(io, 'consensus', stats);
  const summary = consensusSummary(join('labels', 'consensus.jsonl'), stats);
  io.ctx.log(`labels: consensus kept ${stats.kept}/${stats.samples} (${percent(stats.retention)}), first-error precision ${percent(summary.precision)}`);
  return summary;
}

type Labeler<M extends LabelMethod> = (io: LabelsIo, cfg: Extract<LabelsConfig, { method: M }>) => Promise<LabelsSummary>;

/** What each method runs, in order. */
const LABELERS: { [M in LabelMethod]: Labeler<M> } = {
  truth: (io) => dataLabels(io, 'truth'),
  given: (io) => dataLabels(io, 'given'),
  mc: (io, cfg) => withServers(io, cfg, async ({ policy }) => ({ mc: await mcStep(io, cfg, policy) })),
  judge: (io, cfg) => withServers(io, cfg, async ({ judge }) => ({ judge: await judgeStep(io, cfg, judge) })),
  consensus: (io, cfg) =>
    withServers(io, cfg, async ({ policy, judge }) => {
      const mc = await mcStep(io, cfg, policy);
      const judged = await judgeStep(io, cfg, judge);
      return { mc, judge: judged, consensus: await consensusStep(io) };
    }),
};

/**
 * Labels RUN/data/samples.jsonl: MC estimation and/or the LLM judge through an
 * OpenAI-compatible endpoint (`sim`: the built-in sim server, started here on loopback and
 * spoken to over HTTP), then consensus filtering; or the labels the data already has (truth,
 * given). Responses are cached under labels/cache, so a killed stage resumes without re-asking.
 */
export async function runLabelsStage(ctx: RunContext, cfg: LabelsConfig): Promise<LabelsSummary> {
  const dir = join(ctx.runDir, 'labels');
  mkdirSync(dir, { recursive: true });
  // TypeScript cannot pair LABELERS[cfg.method] with cfg's own member of the union; the table's type does.
  const label = LABELERS[cfg.method] as Labeler<LabelMethod>;
  return label({ ctx, dir, input: join(ctx.runDir, SAMPLES_FILE) }, cfg);
}
