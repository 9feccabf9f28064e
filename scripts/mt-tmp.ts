import * as tf from '@tensorflow/tfjs';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { registerThreadedWasmFactory } from '../src/model/wasm-threads.js';
wasm.setThreadsCount(Number(process.argv[2] ?? 2));
if (process.argv[3] !== 'st') console.log(await registerThreadedWasmFactory());
await tf.setBackend('wasm');
const b = tf.backend() as any;
console.log('threads', b.wasm.tfjs.getThreadsCount(), wasm.getThreadsCount(), typeof b.wasm.PThread);
const a = tf.randomNormal([2048, 1024]); const w = tf.randomNormal([1024, 1024]);
for (let i = 0; i < 3; i++) { const t0 = performance.now(); const c = tf.matMul(a, w); c.dataSync(); c.dispose(); console.log((performance.now() - t0).toFixed(1), 'ms'); }
