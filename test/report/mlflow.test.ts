import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { flattenParams, metricsFromLog, MlflowClient } from '../../src/report/mlflow.js';
import { RecipeSchema } from '../../src/recipes/schema.js';
import { runRecipe } from '../../src/run/run.js';
import { testBackend } from '../support/backend.js';

process.env.PRMKIT_NO_PROGRESS = '1';

describe('report: MLflow records (no server)', () => {
  it('flattens the resolved recipe into dotted params; arrays and numbers as JSON text', () => {
    const params = flattenParams({ name: 'r', train: { lr: 0.01, loss: { kind: 'bce' } }, eval: { bon: { aggregators: ['min', 'prod'] } }, model: { path: undefined } });
    expect(params).to.deep.equal({ name: 'r', 'train.lr': '0.01', 'train.loss.kind': 'bce', 'eval.bon.aggregators': '["min","prod"]' });
    const long = flattenParams({ x: 'y'.repeat(7000) }).x;
    expect(long).to.have.lengthOf(6000);
    expect(long.endsWith('... (truncated)')).to.equal(true);
  });

  it('reads metrics.jsonl into train/ and dev/ points at their steps, skipping non-numbers and cut lines', () => {
    const text = [
      JSON.stringify({ kind: 'train', step: 2, loss: 0.7, lr: 0.01, diverged: false }),
      JSON.stringify({ kind: 'dev', step: 2, dev_loss: 0.6, step_auroc: null, first_error_f1: 40 }),
      '{"kind": "train", "step": 4, "lo',
    ].join('\n');
    expect(metricsFromLog(text, 5)).to.deep.equal([
      { key: 'train/loss', value: 0.7, step: 2, timestamp: 5 },
      { key: 'train/lr', value: 0.01, step: 2, timestamp: 5 },
      { key: 'dev/dev_loss', value: 0.6, step: 2, timestamp: 5 },
      { key: 'dev/first_error_f1', value: 40, step: 2, timestamp: 5 },
    ]);
  });

  it('the recipe schema takes report.mlflow and refuses a tracking_uri that is not http(s)', () => {
    const ok = RecipeSchema.safeParse({ report: { mlflow: { tracking_uri: 'http://127.0.0.1:5000', experiment: 'prm' } } });
    expect(ok.success).to.equal(true);
    const bad = RecipeSchema.safeParse({ report: { mlflow: { tracking_uri: 'file:///tmp/mlruns', experiment: 'prm' } } });
    expect(bad.success).to.equal(false);
    expect(JSON.stringify(bad.error?.issues)).to.match(/must be an http\(s\) URL of an MLflow tracking server/);
  });

  it('names the cause when the tracking server cannot be reached', async () => {
    const port = await freePort();
    let error: unknown;
    await new MlflowClient(`http://127.0.0.1:${port}`).experimentId('x').catch((e: unknown) => (error = e));
    expect(String(error)).to.match(new RegExp(`MLflow: http://127\\.0\\.0\\.1:${port}/api/2\\.0/mlflow/experiments/get-by-name\\?experiment_name=x: connection to 127\\.0\\.0\\.1:${port} refused \\(ECONNREFUSED\\)`));
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The mlflow executable: PRMKIT_MLFLOW, else `mlflow` on PATH (pip install mlflow). */
function mlflowBinary(): string | undefined {
  const candidate = process.env.PRMKIT_MLFLOW ?? 'mlflow';
  return spawnSync(candidate, ['--version'], { stdio: 'ignore' }).status === 0 ? candidate : undefined;
}

describe('report: a run logged to a real MLflow server', function () {
  this.timeout(600_000);
  let server: ChildProcess | undefined;
  let uri: string;
  const dir = mkdtempSync(join(tmpdir(), 'prmkit-mlflow-'));

  before(async function () {
    const binary = mlflowBinary();
    if (!binary) {
      console.log('    skipped: no mlflow server to test against (pip install mlflow, or set PRMKIT_MLFLOW to its executable)');
      this.skip();
    }
    const port = await freePort();
    uri = `http://127.0.0.1:${port}`;
    server = spawn(
      binary as string,
      ['server', '--host', '127.0.0.1', '--port', String(port), '--workers', '1', '--backend-store-uri', `sqlite:///${join(dir, 'mlflow.db')}`, '--artifacts-destination', join(dir, 'artifacts')],
      { detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    server.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const up = await fetch(`${uri}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline || server.exitCode !== null) throw new Error(`mlflow server did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  after(() => {
    // The server's workers are in its process group, started by this test.
    if (server?.pid !== undefined && server.exitCode === null) process.kill(-server.pid, 'SIGTERM');
  });

  async function api(path: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${uri}${path}`);
    expect(res.status, path).to.equal(200);
    return (await res.json()) as Record<string, unknown>;
  }

  it('prmkit run logs params, train/dev metrics per step, final metrics and the report; --resume does not log it twice', async () => {
    const recipe = {
      name: 'tiny-mlflow',
      seed: 3,
      backend: testBackend(),
      data: { source: 'sim', problems: 40, world: { max_steps: 4 } },
      model: { config: { hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 32, max_position_embeddings: 512 } },
      train: { epochs: 1, batch_size: 8, lr: 1e-2, eval_every: 2, save_every: 2, keep_last: 2, dev_fraction: 0.2, log_every: 1 },
      eval: { sim: { samples: 16, n: 2, seed: 5 } },
      report: { mlflow: { tracking_uri: uri, experiment: 'prmkit-test' } },
    };
    const path = join(dir, 'tiny.yaml');
    writeFileSync(path, YAML.stringify(recipe));
    const out = join(dir, 'run');
    const lines: string[] = [];
    await runRecipe({ recipePath: path, out, log: (l) => lines.push(l), progress: false });
    const record = JSON.parse(readFileSync(join(out, 'mlflow.json'), 'utf8')) as { run_id: string; status: string };
    expect(record.status).to.equal('FINISHED');

    const run = (await api(`/api/2.0/mlflow/runs/get?run_id=${record.run_id}`)).run as {
      info: { status: string; run_name: string; experiment_id: string };
      data: { params: { key: string; value: string }[]; metrics: { key: string; value: number; step: number }[] };
    };
    expect(run.info.status).to.equal('FINISHED');
    expect(run.info.run_name).to.equal('tiny-mlflow');
    const params = Object.fromEntries(run.data.params.map((p) => [p.key, p.value]));
    expect(params).to.include({ name: 'tiny-mlflow', 'train.lr': '0.01', 'train.batch_size': '8', 'data.source': 'sim', 'report.mlflow.experiment': 'prmkit-test' });
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, number>;
    const latest = Object.fromEntries(run.data.metrics.map((m) => [m.key, m]));
    expect(latest['final/train_steps'].value).to.equal(summary.train_steps);
    expect(latest['final/sim_processbench_f1'].value).to.be.closeTo(summary.sim_processbench_f1, 1e-9);

    // Every train and dev record of metrics.jsonl is a point of the metric's history.
    const logged = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number; loss?: number; dev_loss?: number });
    const history = async (key: string) =>
      ((await api(`/api/2.0/mlflow/metrics/get-history?run_id=${record.run_id}&metric_key=${encodeURIComponent(key)}`)).metrics as { step: number; value: number }[]).sort((a, b) => a.step - b.step);
    const trainLoss = await history('train/loss');
    expect(trainLoss.map((m) => m.step)).to.deep.equal(logged.filter((r) => r.kind === 'train').map((r) => r.step));
    trainLoss.forEach((m, i) => expect(m.value).to.be.closeTo(logged.filter((r) => r.kind === 'train')[i].loss!, 1e-9));
    const devLoss = await history('dev/dev_loss');
    expect(devLoss.map((m) => m.step)).to.deep.equal(logged.filter((r) => r.kind === 'dev').map((r) => r.step));
    expect(devLoss.length).to.be.greaterThan(0);

    // The report files are artifacts, byte for byte.
    const listed = ((await api(`/api/2.0/mlflow/artifacts/list?run_id=${record.run_id}`)).files as { path: string }[]).map((f) => f.path);
    expect(listed).to.include.members(['report.md', 'summary.json', 'recipe.resolved.yaml', 'eval']);
    const artifact = await fetch(`${uri}/api/2.0/mlflow-artifacts/artifacts/${run.info.experiment_id}/${record.run_id}/artifacts/report.md`);
    expect(await artifact.text()).to.equal(readFileSync(join(out, 'report.md'), 'utf8'));
    const evalFiles = ((await api(`/api/2.0/mlflow/artifacts/list?run_id=${record.run_id}&path=eval/sim`)).files as { path: string }[]).map((f) => f.path);
    expect(evalFiles).to.deep.equal(['eval/sim/summary.json']);

    // --resume: every stage is done and so is the MLflow run.
    const again: string[] = [];
    await runRecipe({ recipePath: path, out, resume: true, log: (l) => again.push(l), progress: false });
    expect(again.some((l) => l.includes(`mlflow: already logged as run ${record.run_id}`))).to.equal(true);
    const runs = (await fetch(`${uri}/api/2.0/mlflow/runs/search`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ experiment_ids: [run.info.experiment_id] }) }).then((r) => r.json())) as { runs: unknown[] };
    expect(runs.runs).to.have.lengthOf(1);
    expect(existsSync(join(out, 'report.md'))).to.equal(true);
  });
});
