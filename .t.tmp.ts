import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './src/model/backend.js';
import { registerCpuFastKernels } from './src/model/wasm-kernels.js';
const stock = tf.getKernel('UnsortedSegmentSum', 'cpu');
await selectBackend('cpu', { log: () => {} });
const x = tf.randomNormal([2048, 256]);
const ids = tf.randomUniform([2048], 0, 4096, 'int32');
function t(label: string) {
  const ts: number[] = [];
  for (let i = 0; i < 4; i++) { const s = performance.now(); const r = tf.unsortedSegmentSum(x, ids as tf.Tensor1D, 4096); r.dataSync(); r.dispose(); ts.push(performance.now() - s); }
  console.log(label, ts.map(Math.round));
}
t('ours');
tf.unregisterKernel('UnsortedSegmentSum', 'cpu'); tf.registerKernel(stock!);
console.log(tf.getKernel('UnsortedSegmentSum','cpu')!.kernelFunc === stock!.kernelFunc);
t('stock');
registerCpuFastKernels();
t('ours again');
