import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { runRecipe, RunSetupError } from '../../src/run/run.js';
import { testBackend } from '../support/backend.js';
import { BACKEND_ENV } from '../../src/backend/backend.js';

const repoRoot = resolve(new URL('../..', import.meta.url).pathname);
// Progress bars of the scoring and grading steps would flood the test output.
process.env.PRMKIT_NO_PROGRESS = '1';

/** A recipe small enough for a test: a tiny sim world, a tiny model, a few steps. */
function tinyRecipe(dir: string, overrides: Record<string, unknown> = {}): string {
  const recipe = {
    name: 'tiny',
    seed: 3,
    backend: testBackend(),
    data: { source: 'sim', problems: 40, world: { max_steps: 4 } },
    labels: { method: 'consensus', endpoint: 'sim', rollouts: 4, concurrency: 8 },
    model: { config: { hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 32, max_position_embeddings: 512 } },
    train: { epochs: 1, batch_size: 8, lr: 1e-2, eval_every: 2, save_every: 2, keep_last: 2, dev_fraction: 0.2 },
    eval: { sim: { samples: 16, n: 2, seed: 5 } },
    ...overrides,
  };
  const path = join(dir, 'tiny.yaml');
  writeFileSync(path, YAML.stringify(recipe));
  return path;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'prmkit-run-'));
}

describe('run: prmkit run end to end', function () {
  this.timeout(180000);

  it('runs data -> labels (sim server over HTTP) -> train -> eval -> report, then --resume redoes nothing', async () => {
    const dir = tempDir();
    const recipe = tinyRecipe(dir);
    const out = join(dir, 'run');
    const lines: string[] = [];
    const result = await runRecipe({ recipePath: recipe, out, log: (l) => lines.push(l), progress: false });
    for (const f of ['recipe.resolved.yaml', 'manifest.json', 'metrics.jsonl', 'report.md', 'summary.json', 'labels/consensus.jsonl', 'labels/mc.jsonl', 'labels/judge.jsonl', 'checkpoints/final/model.safetensors', 'checkpoints/final/tokenizer.json', 'eval/sim/summary.json', 'tokenizer/tokenizer.json']) {
      expect(existsSync(join(out, f)), f).to.equal(true);
    }
    for (const s of ['data', 'labels', 'train', 'eval']) expect(existsSync(join(out, 'stages', `${s}.json`)), s).to.equal(true);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.prmkit_version).to.equal('0.1.0');
    expect(manifest.seed).to.equal(3);
    expect(manifest.backend.name).to.equal(testBackend() === 'cpu' ? 'cpu' : process.env[BACKEND_ENV]?.trim());
    expect(manifest.machine.cpus).to.be.a('number');
    expect(manifest.hashes['data/samples.jsonl']).to.match(/^[0-9a-f]{64}$/);
    expect(manifest.hashes['tokenizer/tokenizer.json']).to.match(/^[0-9a-f]{64}$/);
    expect(manifest.hashes['labels/consensus.jsonl']).to.match(/^[0-9a-f]{64}$/);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).to.contain('| consensus |');
    expect(report).to.contain('**trained PRM**');
    expect(report).to.contain('random uniform, best threshold');
    expect(report).to.contain('| constant score |');
    expect(result.headline.sim_processbench_f1).to.be.a('number');
    expect(lines.some((l) => /sim server listening on http:\/\/127\.0\.0\.1:/.test(l))).to.equal(true);

    const resumed: string[] = [];
    await runRecipe({ recipePath: recipe, out, resume: true, log: (l) => resumed.push(l), progress: false });
    expect(resumed.filter((l) => /finished earlier .* not redone/.test(l))).to.have.length(4);
  });

  it('pretrains the decoder as a causal LM before PRM training when model.pretrain_lm is set', async () => {
    const dir = tempDir();
    const config = { hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 32, max_position_embeddings: 512 };
    const recipe = tinyRecipe(dir, { labels: { method: 'truth' }, model: { config, pretrain_lm: { max_steps: 3, batch_size: 8 } }, eval: undefined });
    const out = join(dir, 'run');
    const lines: string[] = [];
    await runRecipe({ recipePath: recipe, out, log: (l) => lines.push(l), progress: false });
    const train = JSON.parse(readFileSync(join(out, 'stages', 'train.json'), 'utf8')).summary;
    expect(train.pretrain_lm.steps).to.equal(3);
    expect(train.pretrain_lm.tokens).to.be.above(0);
    expect(train.pretrain_lm.first_loss).to.be.a('number');
    // Texts of the training problems only: 40 problems, 20% of them held out for dev.
    expect(lines).to.include('pretrain: causal LM on 32 unlabelled solutions of the training problems');
    expect(lines.findIndex((l) => l.startsWith('pretrain: 3 steps'))).to.be.below(lines.findIndex((l) => /^train: \d+ items/.test(l)));
  });

  it('refuses a used run directory without --resume, and a changed recipe on --resume', async () => {
    const dir = tempDir();
    const recipe = tinyRecipe(dir, { labels: { method: 'truth' }, train: undefined, eval: undefined });
    const out = join(dir, 'run');
    await runRecipe({ recipePath: recipe, out, log: () => {}, progress: false });
    let err: unknown;
    try {
      await runRecipe({ recipePath: recipe, out, log: () => {}, progress: false });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(RunSetupError);
    expect((err as Error).message).to.match(/is not empty: pass --resume/);
    err = undefined;
    try {
      await runRecipe({ recipePath: recipe, out, resume: true, overrides: ['data.problems=41'], log: () => {}, progress: false });
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.match(/resolved recipe differs .*problems: 40.*problems: 41/);
  });

  it('rejects a recipe whose stages cannot run, before doing anything', async () => {
    const dir = tempDir();
    const recipe = tinyRecipe(dir, { data: undefined });
    let err: unknown;
    try {
      await runRecipe({ recipePath: recipe, out: join(dir, 'run'), log: () => {}, progress: false });
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).to.match(/labels needs a data stage; train needs a data stage/);
    expect(existsSync(join(dir, 'run'))).to.equal(false);
  });
});

/** Spawns `prmkit run` from source; resolves with the exit code and signal. */
function prmkit(args: string[], onStdErr?: (chunk: string) => void): { done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>; kill: () => void } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], { cwd: repoRoot, env: { ...process.env, PRMKIT_NO_PROGRESS: '1' } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    onStdErr?.(d.toString());
  });
  child.stdout.on('data', () => {});
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) => child.on('exit', (code, signal) => res({ code, signal, stderr })));
  return { done, kill: () => child.kill('SIGKILL') };
}

describe('run: SIGKILL mid-training, then --resume', function () {
  // Two whole runs of a tiny recipe each, in child processes: minutes on a loaded 2-core machine.
  this.timeout(480000);

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`${backend}: ends with weights bit for bit equal to a run never stopped`, async () => {
      const dir = tempDir();
      const recipe = tinyRecipe(dir, {
        backend,
        labels: { method: 'truth' },
        eval: undefined,
        train: { epochs: 2, batch_size: 4, lr: 1e-2, eval_every: 3, save_every: 2, keep_last: 2, dev_fraction: 0.2, final: 'last', log_every: 1 },
      });
      const straight = join(dir, 'straight');
      await runRecipe({ recipePath: recipe, out: straight, log: () => {}, progress: false });

      const killed = join(dir, 'killed');
      const ckpt = join(killed, 'checkpoints', 'checkpoint-4');
      const first = prmkit(['run', recipe, '--out', killed]);
      await new Promise<void>((res, rej) => {
        const timer = setInterval(() => {
          if (existsSync(ckpt)) {
            clearInterval(timer);
            first.kill();
            res();
          }
        }, 20);
        first.done.then((r) => {
          clearInterval(timer);
          if (r.signal !== 'SIGKILL') rej(new Error(`the run ended before it was killed (code ${r.code}):\n${r.stderr}`));
        });
      });
      const firstExit = await first.done;
      expect(firstExit.signal).to.equal('SIGKILL');
      expect(existsSync(join(killed, 'stages', 'train.json')), 'killed before training finished').to.equal(false);

      const second = prmkit(['run', recipe, '--out', killed, '--resume']);
      const secondExit = await second.done;
      expect(secondExit.code, secondExit.stderr).to.equal(0);
      expect(secondExit.stderr).to.match(/stage data: finished earlier/);
      expect(secondExit.stderr).to.match(/train: resuming from .*checkpoint-\d+ \(step \d+\//);

      const a = readFileSync(join(straight, 'checkpoints', 'final', 'model.safetensors'));
      const b = readFileSync(join(killed, 'checkpoints', 'final', 'model.safetensors'));
      expect(a.length).to.be.greaterThan(1000);
      expect(Buffer.compare(a, b), 'final weights differ').to.equal(0);
      const losses = (d: string) =>
        readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.kind === 'train').map((m) => [m.step, m.loss]);
      expect(losses(killed)).to.deep.equal(losses(straight));
    });
  }
});
