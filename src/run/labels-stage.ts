import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openStepSamples } from '../data/read.js';
import { consensus } from '../labels/consensus.js';
import { labelJudge, type JudgeStats } from '../labels/judge.js';
import { labelMc, type McStats } from '../labels/mc.js';
import type { LabelQuality } from '../labels/stats.js';
import type { ConsensusStats } from '../labels/consensus.js';
import { computeLabelStats } from '../labels/stats.js';
import type { LabelsConfig } from '../recipes/schema.js';
import { startSimServer, type SimServer } from '../sim/server.js';
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
  method: LabelsConfig['method'];
  /** The labelled samples the train stage reads (relative to the run directory). */
  train_file: string;
  sources: Record<string, LabelSourceSummary>;
  endpoint: string;
}

function fromQuality(q: LabelQuality): Pick<LabelSourceSummary, 'precision' | 'recall' | 'f1'> {
  return { precision: q.truth?.precision ?? null, recall: q.truth?.recall ?? null, f1: q.truth?.f1 ?? null };
}

function mcSummary(file: string, s: McStats): LabelSourceSummary {
  return { file, input: s.input, output: s.output, retention: s.retention, ...fromQuality(s.quality), requests: s.client.requests, cache_hits: s.client.cacheHits, retries: s.client.retries };
}

function judgeSummary(file: string, s: JudgeStats): LabelSourceSummary {
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

/**
 * Labels RUN/data/samples.jsonl: MC estimation and/or the LLM judge through an
 * OpenAI-compatible endpoint (`sim`: the built-in sim server, started here on loopback and
 * spoken to over HTTP), then consensus filtering; or the labels the data already has (truth,
 * given). Responses are cached under labels/cache, so a killed stage resumes without re-asking.
 */
export async function runLabelsStage(ctx: RunContext, cfg: LabelsConfig): Promise<LabelsSummary> {
  const labelsDir = join(ctx.runDir, 'labels');
  mkdirSync(labelsDir, { recursive: true });
  const input = join(ctx.runDir, SAMPLES_FILE);

  if (cfg.method === 'truth' || cfg.method === 'given') {
    const { n, labelled, quality } = await labelsOf(input);
    if (labelled === 0) throw new Error(`labels.method ${cfg.method}: the data in ${input} carries no step labels`);
    if (cfg.method === 'truth' && !quality.truth) {
      throw new Error(`labels.method truth needs samples with a known truth (the sim world); use "given" for labels from a file`);
    }
    ctx.log(`labels: using the ${cfg.method} labels of ${labelled}/${n} samples`);
    return {
      method: cfg.method,
      train_file: SAMPLES_FILE,
      endpoint: 'none',
      sources: { [cfg.method]: { file: SAMPLES_FILE, input: n, output: labelled, retention: n > 0 ? labelled / n : null, ...fromQuality(quality) } },
    };
  }

  let server: SimServer | undefined;
  let policyEndpoint = cfg.endpoint;
  let judgeEndpoint = cfg.judge_endpoint ?? cfg.endpoint;
  if (cfg.endpoint === 'sim' || judgeEndpoint === 'sim') {
    const faults = cfg.sim_faults;
    server = await startSimServer({
      seed: ctx.recipe.seed,
      faultRate: faults?.error_rate,
      latencyMs: faults?.latency_ms,
      malformedRate: faults?.malformed_rate,
      // The policy that completes rollouts is the one that wrote the sim data.
      policy: ctx.recipe.data?.source === 'sim' ? simWorldOptions(ctx.recipe.data.world).policy : undefined,
    });
    ctx.log(`labels: sim server listening on ${server.url}`);
    if (policyEndpoint === 'sim') policyEndpoint = server.url;
    if (judgeEndpoint === 'sim') judgeEndpoint = server.url;
  }
  const common = { cacheDir: join(labelsDir, 'cache'), concurrency: cfg.concurrency, progress: ctx.progress, input, format: 'prmkit' as const };
  const sources: Record<string, LabelSourceSummary> = {};
  try {
    let trainFile = '';
    if (cfg.method === 'mc' || cfg.method === 'consensus') {
      const out = join(labelsDir, 'mc.jsonl');
      const stats = await labelMc({
        ...common,
        endpoint: policyEndpoint,
        out,
        model: cfg.policy_model,
        rollouts: cfg.rollouts,
        threshold: cfg.threshold,
        labels: cfg.mc_labels,
        search: cfg.search,
        seed: ctx.recipe.seed,
      });
      await writeFile(join(labelsDir, 'mc.stats.json'), JSON.stringify(stats, null, 2) + '\n');
      sources.mc = mcSummary(join('labels', 'mc.jsonl'), stats);
      ctx.log(`labels: mc ${stats.output}/${stats.input} samples, ${stats.rollouts} rollouts, first-error precision ${pct(sources.mc.precision)}`);
      trainFile = join('labels', 'mc.jsonl');
    }
    if (cfg.method === 'judge' || cfg.method === 'consensus') {
      const out = join(labelsDir, 'judge.jsonl');
      const stats = await labelJudge({ ...common, endpoint: judgeEndpoint, out, model: cfg.judge_model, seed: ctx.recipe.seed });
      await writeFile(join(labelsDir, 'judge.stats.json'), JSON.stringify(stats, null, 2) + '\n');
      sources.judge = judgeSummary(join('labels', 'judge.jsonl'), stats);
      ctx.log(`labels: judge ${stats.output}/${stats.input} samples (${stats.unparsable} unparsable), first-error precision ${pct(sources.judge.precision)}`);
      trainFile = join('labels', 'judge.jsonl');
    }
    if (cfg.method === 'consensus') {
      const out = join(labelsDir, 'consensus.jsonl');
      const stats = await consensus({
        mc: join(labelsDir, 'mc.jsonl'),
        judge: join(labelsDir, 'judge.jsonl'),
        out,
        dropped: join(labelsDir, 'consensus.dropped.jsonl'),
        progress: ctx.progress,
      });
      await writeFile(join(labelsDir, 'consensus.stats.json'), JSON.stringify(stats, null, 2) + '\n');
      sources.consensus = consensusSummary(join('labels', 'consensus.jsonl'), stats);
      ctx.log(`labels: consensus kept ${stats.kept}/${stats.samples} (${pct(stats.retention)}), first-error precision ${pct(sources.consensus.precision)}`);
      trainFile = join('labels', 'consensus.jsonl');
    }
    return { method: cfg.method, train_file: trainFile, sources, endpoint: cfg.endpoint === 'sim' ? 'sim (in-process server over HTTP)' : cfg.endpoint };
  } finally {
    await server?.close();
  }
}

function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`;
}
