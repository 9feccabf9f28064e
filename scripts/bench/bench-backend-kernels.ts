/**
 * Time of the embedding gradient (the backward pass of gather = UnsortedSegmentSum) with the
 * kernels prmkit registers, against tfjs's stock cpu kernel, on every backend that loads.
 *
 *   node --import tsx scripts/bench/bench-backend-kernels.ts [--vocab 4096] [--hidden 256]
 *        [--tokens 2048] [--repeats 5] [--stock-vocab 512]
 *
 * Prints one JSON line per variant: median milliseconds per gradient. The stock cpu kernel
 * costs O(vocab * tokens * hidden), so it runs at --stock-vocab (and once at that size with
 * prmkit's kernel, for comparison). The machine is shared: compare runs made close together.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { registerCpuFastKernels } from '../../src/backend/wasm-kernels.js';
import { Rng } from '../../src/util/rng.js';

function arg(name: string, fallback: string): number {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback);
}

const vocab = arg('vocab', '4096');
const hidden = arg('hidden', '256');
const tokens = arg('tokens', '2048');
const repeats = arg('repeats', '5');
const stockVocab = arg('stock-vocab', '512');

// Captured before selectBackend('cpu') replaces it.
const stockCpu = tf.getKernel('UnsortedSegmentSum', 'cpu');

async function timeGrad(backend: ConcreteBackend, rows: number, n: number, afterSelect?: () => void): Promise<number> {
  await selectBackend(backend, { log: () => {} });
  afterSelect?.();
  const rng = new Rng('bench-backend-kernels');
  const table = tf.tensor2d(Float32Array.from({ length: rows * hidden }, () => rng.normal() * 0.02), [rows, hidden]);
  const ids = tf.tensor1d(Int32Array.from({ length: tokens }, () => rng.int(0, rows - 1)), 'int32');
  const upstream = tf.onesLike(tf.gather(table, ids));
  const times: number[] = [];
  for (let i = 0; i < n + 1; i++) {
    const start = performance.now();
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), upstream)))(table);
    await g.data();
    if (i > 0) times.push(performance.now() - start); // first run warms up
    g.dispose();
  }
  tf.dispose([table, ids, upstream]);
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function report(variant: string, rows: number, ms: number): void {
  console.log(JSON.stringify({ variant, vocab: rows, hidden, tokens, median_ms: Math.round(ms * 10) / 10 }));
}

function useStockCpuKernel(): void {
  if (!stockCpu) throw new Error('tfjs registered no cpu UnsortedSegmentSum');
  tf.unregisterKernel('UnsortedSegmentSum', 'cpu');
  tf.registerKernel(stockCpu);
}

report('cpu (prmkit one-pass kernel)', vocab, await timeGrad('cpu', vocab, repeats));
report('wasm (prmkit one-pass kernel)', vocab, await timeGrad('wasm', vocab, repeats));
try {
  report('tensorflow (native kernel)', vocab, await timeGrad('tensorflow', vocab, repeats));
} catch (err) {
  console.error(`tensorflow: ${err instanceof Error ? err.message : String(err)}`);
}
report('cpu (prmkit one-pass kernel)', stockVocab, await timeGrad('cpu', stockVocab, repeats));
report('cpu (tfjs stock kernel)', stockVocab, await timeGrad('cpu', stockVocab, 1, useStockCpuKernel));
registerCpuFastKernels();
