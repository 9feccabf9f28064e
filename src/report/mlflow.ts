import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describeFetchError } from '../util/net-errors.js';
import { writeFileAtomic } from '../util/durable-fs.js';

/**
 * A finished run logged to an MLflow tracking server through its REST API (no SDK): the resolved
 * recipe as params, metrics.jsonl as per-step metrics (train/..., dev/...), the headline metrics
 * as final metrics, and the report files as artifacts. Artifacts go through the server's artifact
 * proxy (`mlflow server` serves artifacts by default: artifact URIs `mlflow-artifacts:/...`).
 * The run id is kept in RUN/mlflow.json, so `prmkit run --resume` after a failed upload retries
 * it and a finished one is not logged twice.
 */

export interface MlflowConfig {
  tracking_uri: string;
  experiment: string;
  run_name?: string;
}

export interface MlflowRecord {
  tracking_uri: string;
  experiment_id: string;
  run_id: string;
  status: 'RUNNING' | 'FINISHED';
}

export const MLFLOW_RECORD = 'mlflow.json';

// MLflow's REST limits: log-batch takes at most 1000 metrics and 100 params per call; a param
// value is at most 6000 characters (the server refuses longer ones).
const MAX_BATCH_METRICS = 1000;
const MAX_BATCH_PARAMS = 100;
const MAX_PARAM_VALUE = 6000;
const MAX_KEY = 250;

/** A nested object as dotted keys; arrays and other non-plain values as their JSON text. */
export function flattenParams(value: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) flattenParams(v, prefix ? `${prefix}.${k}` : k, out);
    return out;
  }
  if (value === undefined) return out;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const cut = '... (truncated)';
  out[prefix.slice(0, MAX_KEY)] = text.length > MAX_PARAM_VALUE ? text.slice(0, MAX_PARAM_VALUE - cut.length) + cut : text;
  return out;
}

export interface MetricPoint {
  key: string;
  value: number;
  step: number;
  timestamp: number;
}

/**
 * metrics.jsonl as MLflow metric points: each numeric field of a train record as train/<field>,
 * of a dev record as dev/<field>, at the record's step.
 */
export function metricsFromLog(text: string, timestamp: number): MetricPoint[] {
  const points: MetricPoint[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // a line cut by a kill: MetricsLog drops it on resume as well
    }
    const kind = rec.kind;
    const step = rec.step;
    if ((kind !== 'train' && kind !== 'dev') || typeof step !== 'number') continue;
    for (const [k, v] of Object.entries(rec)) {
      if (k === 'kind' || k === 'step' || typeof v !== 'number' || !Number.isFinite(v)) continue;
      points.push({ key: `${kind}/${k}`, value: v, step, timestamp });
    }
  }
  return points;
}

/** Files of the run that document it (the report, its plots, summaries, the recipe), relative to the run. */
export function reportFiles(runDir: string): string[] {
  const files: string[] = [];
  for (const name of ['report.md', 'summary.json', 'recipe.resolved.yaml', 'manifest.json', 'metrics.jsonl']) {
    if (existsSync(join(runDir, name))) files.push(name);
  }
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(png|svg|json|md)$/.test(entry)) files.push(relative(runDir, path).split(sep).join('/'));
    }
  };
  walk(join(runDir, 'plots'));
  // Evaluation summaries; per-sample score files can be large and stay in the run directory.
  const evalDir = join(runDir, 'eval');
  if (existsSync(evalDir)) {
    for (const entry of readdirSync(evalDir).sort()) {
      const summary = join(evalDir, entry, 'summary.json');
      if (existsSync(summary)) files.push(`eval/${entry}/summary.json`);
    }
  }
  return files;
}

/** MLflow's REST API at one tracking URI. */
export class MlflowClient {
  private readonly base: string;
  constructor(trackingUri: string) {
    this.base = trackingUri.replace(/\/+$/, '');
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    // The same variables the MLflow SDK reads.
    const token = process.env.MLFLOW_TRACKING_TOKEN;
    const user = process.env.MLFLOW_TRACKING_USERNAME;
    if (token) h.Authorization = `Bearer ${token}`;
    else if (user) h.Authorization = `Basic ${Buffer.from(`${user}:${process.env.MLFLOW_TRACKING_PASSWORD ?? ''}`).toString('base64')}`;
    return h;
  }

  private async request(method: string, path: string, body?: unknown, okStatuses: number[] = []): Promise<{ status: number; json: Record<string, unknown> }> {
    const url = `${this.base}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: this.headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new Error(`MLflow: ${describeFetchError(url, e)}`);
    }
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // not JSON: kept as text in the error below
    }
    if (!res.ok && !okStatuses.includes(res.status)) {
      throw new Error(`MLflow: ${method} ${url}: HTTP ${res.status}: ${(json.message as string | undefined) ?? text.slice(0, 300)}`);
    }
    return { status: res.status, json };
  }

  /** The id of the named experiment, created when it does not exist. */
  async experimentId(name: string): Promise<string> {
    const found = await this.request('GET', `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`, undefined, [404]);
    const experiment = found.json.experiment as { experiment_id?: string } | undefined;
    if (found.status === 200 && experiment?.experiment_id) return experiment.experiment_id;
    const created = await this.request('POST', '/api/2.0/mlflow/experiments/create', { name });
    return created.json.experiment_id as string;
  }

  async createRun(experimentId: string, runName: string, startTime: number): Promise<{ runId: string; artifactUri: string }> {
    const { json } = await this.request('POST', '/api/2.0/mlflow/runs/create', {
      experiment_id: experimentId,
      run_name: runName,
      start_time: startTime,
      tags: [{ key: 'mlflow.source.name', value: 'prmkit run' }],
    });
    const info = (json.run as { info: { run_id: string; artifact_uri: string } }).info;
    return { runId: info.run_id, artifactUri: info.artifact_uri };
  }

  async artifactUri(runId: string): Promise<string> {
    const { json } = await this.request('GET', `/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(runId)}`);
    return (json.run as { info: { artifact_uri: string } }).info.artifact_uri;
  }

  async logParams(runId: string, params: Record<string, string>): Promise<void> {
    const entries = Object.entries(params).map(([key, value]) => ({ key, value }));
    for (let i = 0; i < entries.length; i += MAX_BATCH_PARAMS) {
      await this.request('POST', '/api/2.0/mlflow/runs/log-batch', { run_id: runId, params: entries.slice(i, i + MAX_BATCH_PARAMS) });
    }
  }

  async logMetrics(runId: string, points: readonly MetricPoint[]): Promise<void> {
    for (let i = 0; i < points.length; i += MAX_BATCH_METRICS) {
      await this.request('POST', '/api/2.0/mlflow/runs/log-batch', { run_id: runId, metrics: points.slice(i, i + MAX_BATCH_METRICS) });
    }
  }

  /**
   * Uploads one file through the server's artifact proxy. Only `mlflow-artifacts:` URIs go
   * through the tracking server; a run whose artifacts live elsewhere (s3://, a local path on
   * the server's machine) needs the SDK or that store's own client.
   */
  async uploadArtifact(artifactUri: string, path: string, data: Buffer): Promise<void> {
    const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/(.*)$/.exec(artifactUri);
    if (!match) {
      throw new Error(`MLflow: the run's artifacts go to ${artifactUri}, which the REST API cannot write; start the server with artifact serving (mlflow server --serve-artifacts, the default)`);
    }
    const target = `/api/2.0/mlflow-artifacts/artifacts/${match[1].replace(/\/+$/, '')}/${path.split('/').map(encodeURIComponent).join('/')}`;
    const url = `${this.base}${target}`;
    let res: Response;
    try {
      res = await fetch(url, { method: 'PUT', headers: this.headers({ 'Content-Type': 'application/octet-stream' }), body: data });
    } catch (e) {
      throw new Error(`MLflow: ${describeFetchError(url, e)}`);
    }
    if (!res.ok) throw new Error(`MLflow: PUT ${url}: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
  }

  async finishRun(runId: string, endTime: number): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/update', { run_id: runId, status: 'FINISHED', end_time: endTime });
  }
}

export interface LogRunInput {
  runDir: string;
  /** The resolved recipe (params). */
  recipe: unknown;
  /** Final metrics (the run's headline metrics), logged at `finalStep`. */
  final: Record<string, number | null | undefined>;
  finalStep: number;
  runName: string;
  log: (line: string) => void;
}

/** Logs a finished run (see the module comment); returns the MLflow run id. */
export async function logRunToMlflow(cfg: MlflowConfig, input: LogRunInput): Promise<string> {
  const recordPath = join(input.runDir, MLFLOW_RECORD);
  const previous = existsSync(recordPath) ? (JSON.parse(readFileSync(recordPath, 'utf8')) as MlflowRecord) : undefined;
  if (previous?.status === 'FINISHED' && previous.tracking_uri === cfg.tracking_uri) {
    input.log(`mlflow: already logged as run ${previous.run_id} (${MLFLOW_RECORD})`);
    return previous.run_id;
  }
  const client = new MlflowClient(cfg.tracking_uri);
  const now = Date.now();
  let experimentId: string;
  let runId: string;
  let artifactUri: string;
  if (previous?.status === 'RUNNING' && previous.tracking_uri === cfg.tracking_uri) {
    // A previous attempt stopped part-way: its params and metrics are logged again (MLflow keeps
    // the same values for a param, and a metric point repeated at its step is harmless to plots).
    ({ experiment_id: experimentId, run_id: runId } = previous);
    artifactUri = await client.artifactUri(runId);
  } else {
    experimentId = await client.experimentId(cfg.experiment);
    ({ runId, artifactUri } = await client.createRun(experimentId, cfg.run_name ?? input.runName, now));
  }
  const record: MlflowRecord = { tracking_uri: cfg.tracking_uri, experiment_id: experimentId, run_id: runId, status: 'RUNNING' };
  await writeFileAtomic(recordPath, JSON.stringify(record, null, 2) + '\n');

  await client.logParams(runId, flattenParams(input.recipe));
  const metricsPath = join(input.runDir, 'metrics.jsonl');
  const points = existsSync(metricsPath) ? metricsFromLog(readFileSync(metricsPath, 'utf8'), now) : [];
  for (const [k, v] of Object.entries(input.final)) {
    if (typeof v === 'number' && Number.isFinite(v)) points.push({ key: `final/${k}`, value: v, step: input.finalStep, timestamp: now });
  }
  await client.logMetrics(runId, points);
  const files = reportFiles(input.runDir);
  for (const file of files) await client.uploadArtifact(artifactUri, file, readFileSync(join(input.runDir, file)));
  await client.finishRun(runId, Date.now());
  await writeFileAtomic(recordPath, JSON.stringify({ ...record, status: 'FINISHED' }, null, 2) + '\n');
  input.log(`mlflow: run ${runId} in experiment "${cfg.experiment}" at ${cfg.tracking_uri}: ${Object.keys(flattenParams(input.recipe)).length} params, ${points.length} metric points, ${files.length} artifacts`);
  return runId;
}
