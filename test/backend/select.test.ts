import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import {
  AUTO_ORDER,
  BACKEND_ENV,
  BackendUnavailableError,
  backendInfo,
  defaultBackend,
  selectBackend,
  WASM_THREADS_ENV,
  type BackendName,
  type BackendSelection,
} from '../../src/backend/backend.js';

const NATIVE_REASON =
  /is not installed|native binding not built|native binding failed to load|sees no GPU device|already loaded|import failed/;

function collector(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

describe('backend: selectBackend', function () {
  after(async function () {
    await selectBackend('cpu', { log: () => {} });
  });

  it('cpu: selects the pure-JS backend and logs it', async function () {
    await selectBackend('wasm', { log: () => {} }); // so that cpu is a new choice
    const { lines, log } = collector();
    const sel = await selectBackend('cpu', { log });
    expect(sel).to.deep.include({ name: 'cpu', tfBackend: 'cpu' });
    expect(sel.attempts).to.deep.equal([{ name: 'cpu', ok: true }]);
    expect(tf.getBackend()).to.equal('cpu');
    expect(lines).to.deep.equal(['backend: using cpu (1 thread)']);
    const info = backendInfo();
    expect(info).to.deep.include({ name: 'cpu', tfBackend: 'cpu', simd: null, gpu: null, tensorflowVersion: null });
    expect(info.tfjsVersion).to.equal(tf.version.tfjs);
  });

  it('wasm: initialises the wasm module from node_modules and reports SIMD and threads', async function () {
    await selectBackend('cpu', { log: () => {} }); // so that wasm is a new choice
    const { lines, log } = collector();
    const sel = await selectBackend('wasm', { log });
    expect(sel).to.deep.include({ name: 'wasm', tfBackend: 'wasm' });
    expect(tf.getBackend()).to.equal('wasm');
    const info = backendInfo();
    expect(info.name).to.equal('wasm');
    expect(info.simd).to.be.a('boolean');
    expect(info.threads).to.be.at.least(1);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^backend: using wasm \((no )?SIMD, \d+ threads?\)$/);
    const y = tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).dataSync());
    expect(Array.from(y)).to.deep.equal([3, 3, 3, 3]);
  });

  it('is idempotent: the same choice again returns the same selection without logging', async function () {
    const first = await selectBackend('wasm', { log: () => {} });
    const { lines, log } = collector();
    const again = await selectBackend('wasm', { log });
    expect(again).to.equal(first);
    expect(lines).to.deep.equal([]);
    // A different choice switches, and switching back works.
    expect((await selectBackend('cpu', { log: () => {} })).name).to.equal('cpu');
    expect((await selectBackend('wasm', { log: () => {} })).name).to.equal('wasm');
    expect(tf.getBackend()).to.equal('wasm');
  });

  it('auto: takes the first backend that loads and records why the earlier ones did not', async function () {
    // With PRMKIT_BACKEND set (as in CI), auto would mean that backend: test the plain order.
    const saved = process.env[BACKEND_ENV];
    delete process.env[BACKEND_ENV];
    const { lines, log } = collector();
    let sel: BackendSelection;
    try {
      sel = await selectBackend('auto', { log });
    } finally {
      if (saved !== undefined) process.env[BACKEND_ENV] = saved;
    }
    const chosen = AUTO_ORDER.indexOf(sel.name);
    expect(chosen).to.be.at.least(0);
    expect(sel.attempts.map((a) => a.name)).to.deep.equal(AUTO_ORDER.slice(0, chosen + 1));
    for (const failed of sel.attempts.slice(0, -1)) {
      expect(failed.ok).to.equal(false);
      expect(failed.reason, failed.name).to.match(NATIVE_REASON);
      // Named once, briefly, on the line that says which backend is in use.
      expect(lines.at(-1)).to.contain(`${failed.name}: `);
    }
    expect(lines, 'one line for the whole fallback chain').to.have.length(1);
    expect(sel.attempts.at(-1)).to.deep.equal({ name: sel.name, ok: true });
    expect(lines.at(-1)).to.match(new RegExp(`^backend: using ${sel.name} \\(.*\\) \\[auto(; skipped .*)?\\]$`));
    expect(backendInfo().attempts).to.deep.equal(sel.attempts);
    if (sel.name === 'wasm') {
      expect(sel.attempts[0].reason).to.contain('@tensorflow/tfjs-node-gpu');
      expect(sel.attempts[1].reason).to.contain('@tensorflow/tfjs-node');
    }
  });

  it('an explicitly requested backend that cannot load is an error naming the reason', async function () {
    // Here tensorflow-gpu never loads (no GPU). On a GPU machine where auto took it, the CPU
    // package is the one that cannot load: one process holds only one native package.
    const auto = await selectBackend('auto', { log: () => {} });
    const unavailable = auto.name === 'tensorflow-gpu' ? 'tensorflow' : 'tensorflow-gpu';
    const err = await selectBackend(unavailable, { log: () => {} }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(BackendUnavailableError);
    const e = err as BackendUnavailableError;
    expect(e.backend).to.equal(unavailable);
    expect(e.message).to.match(new RegExp(`^backend '${unavailable}' is not available: `));
    expect(e.reason).to.match(NATIVE_REASON);
    // The failed attempt leaves the previous backend usable.
    expect(tf.tidy(() => tf.add(tf.scalar(1), 2).dataSync()[0])).to.equal(3);
  });

  describe(`${BACKEND_ENV}`, function () {
    let saved: string | undefined;
    beforeEach(() => {
      saved = process.env[BACKEND_ENV];
    });
    afterEach(async () => {
      if (saved === undefined) delete process.env[BACKEND_ENV];
      else process.env[BACKEND_ENV] = saved;
      await selectBackend('cpu', { log: () => {} });
    });

    it('names the backend that auto (the default) stands for', async function () {
      delete process.env[BACKEND_ENV];
      expect(defaultBackend()).to.equal('auto');
      process.env[BACKEND_ENV] = ' wasm ';
      expect(defaultBackend()).to.equal('wasm');
      await selectBackend('cpu', { log: () => {} });
      const { lines, log } = collector();
      const sel = await selectBackend(undefined, { log });
      expect(sel.name).to.equal('wasm');
      expect(sel.attempts).to.deep.equal([{ name: 'wasm', ok: true }]);
      expect(lines.at(-1)).to.match(new RegExp(`^backend: using wasm \\(.*\\) \\[${BACKEND_ENV}\\]$`));
      // An explicit choice is not overridden.
      expect((await selectBackend('cpu', { log: () => {} })).name).to.equal('cpu');
      // Changing the variable changes what auto means.
      process.env[BACKEND_ENV] = 'cpu';
      expect((await selectBackend('auto', { log: () => {} })).name).to.equal('cpu');
    });

    it('is an error when it names no backend, or one that cannot load', async function () {
      process.env[BACKEND_ENV] = 'webgpu';
      expect(() => defaultBackend()).to.throw(`${BACKEND_ENV}=webgpu is not a backend (choose one of auto, tensorflow-gpu, tensorflow, wasm, cpu)`);
      const auto = await selectBackend('auto', { log: () => {} }).then(() => null, (e: unknown) => e);
      expect(String(auto)).to.contain(`${BACKEND_ENV}=webgpu is not a backend`);
      process.env[BACKEND_ENV] = 'tensorflow-gpu';
      const gpu = await selectBackend('auto', { log: () => {} }).then(() => null, (e: unknown) => e);
      // On a machine with a usable GPU build this loads; elsewhere it must fail loudly, not fall back.
      if (gpu !== null) expect(gpu).to.be.instanceOf(BackendUnavailableError);
    });
  });

  it(`${WASM_THREADS_ENV}=2 starts the threaded wasm build, which computes and lets the process exit`, function () {
    const req = createRequire(import.meta.url);
    const tsx = pathToFileURL(req.resolve('tsx')).href;
    const tfjsUrl = pathToFileURL(req.resolve('@tensorflow/tfjs')).href;
    const backendUrl = pathToFileURL(fileURLToPath(new URL('../../src/backend/backend.ts', import.meta.url))).href;
    const script = `
      const { selectBackend, backendInfo } = await import(${JSON.stringify(backendUrl)});
      await selectBackend('wasm', { log: (l) => console.error(l) });
      const tf = await import(${JSON.stringify(tfjsUrl)});
      const a = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
      const product = tf.matMul(a, a, true, false).dataSync();
      console.log(JSON.stringify({ threads: backendInfo().threads, product: Array.from(product) }));`;
    const run = spawnSync(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, [WASM_THREADS_ENV]: '2', [BACKEND_ENV]: '' },
    });
    expect(run.status, run.stderr).to.equal(0);
    expect(run.stderr).to.match(/backend: using wasm \(SIMD, 2 threads\)/);
    // a^T a per batch item: [[1,3],[2,4]]·[[1,2],[3,4]] and [[5,7],[6,8]]·[[5,6],[7,8]]
    expect(JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '')).to.deep.equal({ threads: 2, product: [10, 14, 14, 20, 74, 86, 86, 100] });
    const bad = spawnSync(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, [WASM_THREADS_ENV]: 'many', [BACKEND_ENV]: '' },
    });
    expect(bad.status).to.not.equal(0);
    expect(bad.stderr).to.contain(`${WASM_THREADS_ENV}=many: expected an integer in [1, 8]`);
  });

  it('rejects an unknown backend name', async function () {
    const err = await selectBackend('webgl' as BackendName, { log: () => {} }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(String(err)).to.match(/unknown backend 'webgl' \(choose one of auto, tensorflow-gpu, tensorflow, wasm, cpu\)/);
  });

  it('logs to stderr by default', async function () {
    await selectBackend('cpu', { log: () => {} });
    const original = process.stderr.write.bind(process.stderr);
    const written: string[] = [];
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      await selectBackend('wasm');
    } finally {
      process.stderr.write = original;
    }
    expect(written.join('')).to.match(/^backend: using wasm \(.*\)\n$/);
  });

  it('wasm finds its .wasm binaries when the process runs from another directory', function () {
    const req = createRequire(import.meta.url);
    const tsx = pathToFileURL(req.resolve('tsx')).href;
    const tfjsUrl = pathToFileURL(req.resolve('@tensorflow/tfjs')).href;
    const backendUrl = pathToFileURL(fileURLToPath(new URL('../../src/backend/backend.ts', import.meta.url))).href;
    const script = `
      const { selectBackend, backendInfo } = await import(${JSON.stringify(backendUrl)});
      await selectBackend('wasm', { log: () => {} });
      const tf = await import(${JSON.stringify(tfjsUrl)});
      console.log(JSON.stringify({ name: backendInfo().name, sum: tf.sum(tf.ones([4])).dataSync()[0] }));`;
    const run = spawnSync(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], {
      cwd: tmpdir(),
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NODE_PATH: '' },
    });
    expect(run.status, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '')).to.deep.equal({ name: 'wasm', sum: 4 });
  });
});
