/**
 * Time of the embedding gradient (the backward pass of gather = UnsortedSegmentSum) with the
 * kernels prmkit registers, against tfjs's stock cpu kernel, on every backend that loads.
 *
 *   node --import tsx scripts/bench-backend-kernels.ts [--vocab 4096] [--hidden 256]
 *        [--tokens 2048] [--repeats 5] [--stock-repeats 1]
 *
 * Prints one JSON line per variant: median milliseconds per gradient. The machine is shared:
 * compare runs made close together.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type ConcreteBackend } from '../src/model/backend.js';
import { registerCpuFastKernels } from '../src/model/wasm-kernels.js';
import { Rng } from '../src/util/rng.js';

function arg(name: string, fallback: string): number {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback);
}

const vocab = arg('vocab', '4096');
const hidden = arg('hidden', '256');
const tokens = arg('tokens', '2048');
const repeats = arg('repeats', '5');
const stockRepeats = arg('stock-repeats', '1');

// Captured before selectBackend('cpu') replaces it.
const stockCpu = tf.getKernel('UnsortedSegmentSum', 'cpu');

const rng = new Rng('bench-backend-kernels');
const tableValues = Float32Array.from({ length: vocab * hidden }, () => rng.normal() * 0.02);
const idValues = Int32Array.from({ length: tokens }, () => rng.int(0, vocab - 1));

async function timeGrad(backend: ConcreteBackend, n: number): Promise<number> {
  await selectBackend(backend, { log: () => {} });
  const table = tf.tensor2d(tableValues, [vocab, hidden]);
  const ids = tf.tensor1d(idValues, 'int32');
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

function report(variant: string, ms: number): void {
  console.log(JSON.stringify({ variant, vocab, hidden, tokens, median_ms: Math.round(ms * 10) / 10 }));
}

report('cpu (prmkit one-pass kernel)', await timeGrad('cpu', repeats));
report('wasm (prmkit one-pass kernel)', await timeGrad('wasm', repeats));
if (stockCpu) {
  tf.unregisterKernel('UnsortedSegmentSum', 'cpu');
  tf.registerKernel(stockCpu);
  report('cpu (tfjs stock kernel)', await timeGrad('cpu', stockRepeats));
  registerCpuFastKernels();
}
try {
  report('tensorflow (native kernel)', await timeGrad('tensorflow', repeats));
} catch (err) {
  console.error(`tensorflow: ${err instanceof Error ? err.message : String(err)}`);
}
