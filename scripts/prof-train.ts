import * as tf from '@tensorflow/tfjs';
import { selectBackend, type ConcreteBackend } from '../src/model/backend.js';
import { initPrm } from '../src/model/prm.js';
import { stepLossSumRows, stepWeightTotal } from '../src/train/loss.js';
import { AdamW } from '../src/train/optimizer.js';
import { clipByGlobalNorm } from '../src/train/gradients.js';
import { Rng } from '../src/util/rng.js';

const backend = (process.argv[2] ?? 'wasm') as ConcreteBackend;
const steps = Number(process.argv[3] ?? 3);
const profile = process.argv.includes('--profile');

await selectBackend(backend);
const cfg = { vocabSize: 4096, hiddenSize: 256, numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 4, headDim: 64, intermediateSize: 1024, ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false, maxPositionEmbeddings: 512, numLabels: 2 };
const model = initPrm(cfg, 0);
const B = 8, T = 256;
const rng = new Rng(1);
const ids = Int32Array.from({ length: B * T }, () => rng.int(0, 4095));
const positions = Array.from({ length: B }, () => Array.from({ length: 8 }, (_, i) => 31 + 32 * i));
const probs = Float32Array.from({ length: B * 8 }, () => (rng.next() < 0.5 ? 0 : 1));
const vars = model.trainableVariables();
const names = [...model.variables.keys()];
const opt = new AdamW(vars.map((v, i) => ({ name: names[i], variable: v })));
const loss = { kind: 'ce' as const, classWeights: [1, 1] as [number, number] };
const w = stepWeightTotal(probs, loss);
const phase = { grad: 0, clip: 0, apply: 0 };
function step() {
  let t = performance.now();
  const { value, grads } = tf.tidy(() => {
    const idsT = tf.tensor2d(ids, [B, T], 'int32');
    const mask = tf.ones([B, T], 'int32') as tf.Tensor2D;
    return tf.variableGrads(() => tf.div(stepLossSumRows(model.logitsAt(idsT, mask, positions), probs, loss), w) as tf.Scalar, vars);
  });
  const l = value.dataSync()[0];
  value.dispose();
  phase.grad += performance.now() - t; t = performance.now();
  const g = vars.map((v) => grads[v.name]);
  const c = clipByGlobalNorm(g, 1.0);
  tf.dispose(g);
  phase.clip += performance.now() - t; t = performance.now();
  opt.apply(c.grads, 1e-4);
  tf.dispose(c.grads);
  opt.params[0].variable.dataSync();
  phase.apply += performance.now() - t;
  return l;
}
step(); step();
if (profile) {
  const p = await tf.profile(() => { step(); });
  const agg = new Map<string, { ms: number; n: number }>();
  for (const k of p.kernels) {
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const e = agg.get(key) ?? { ms: 0, n: 0 };
    e.ms += Number(k.kernelTimeMs); e.n++;
    agg.set(key, e);
  }
  const byName = new Map<string, number>();
  for (const k of p.kernels) byName.set(k.name, (byName.get(k.name) ?? 0) + Number(k.kernelTimeMs));
  console.log([...byName].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([n, ms]) => `${n}\t${ms.toFixed(1)}`).join('\n'));
  console.log('----');
  console.log([...agg].sort((a, b) => b[1].ms - a[1].ms).slice(0, 120).map(([k, e]) => `${e.ms.toFixed(1)}\t${e.n}\t${k}`).join('\n'));
}
phase.grad = phase.clip = phase.apply = 0;
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const dt = (performance.now() - t0) / steps;
console.log(Object.entries(phase).map(([k, v]) => `${k} ${(v / steps).toFixed(0)}`).join(' '));
console.log(`${backend}: ${dt.toFixed(0)} ms/step, ${(B * T / dt * 1000).toFixed(0)} tok/s, tensors ${tf.memory().numTensors}`);
if (process.argv.includes('--fwd')) {
  const fwd = () => tf.tidy(() => {
    const idsT = tf.tensor2d(ids, [B, T], 'int32');
    const mask = tf.ones([B, T], 'int32') as tf.Tensor2D;
    return stepLossSumRows(model.logitsAt(idsT, mask, positions), probs, loss).dataSync()[0];
  });
  fwd();
  const t1 = performance.now();
  for (let i = 0; i < steps; i++) fwd();
  console.log(`forward only: ${((performance.now() - t1) / steps).toFixed(0)} ms`);
}
