/**
 * Inverted dropout on the native backend when the fused kernels do not run (the GPU build, or
 * train.kernels: eager): the mask comes from TensorFlow's stateless uniform generator
 * (StatelessRandomUniform, Philox keyed by the seed), drawn on the backend's device. tf.dropout
 * draws every mask in JavaScript and copies it in, which at 0.5B size took a quarter of a LoRA step
 * on this CPU and would sit between every projection on a GPU. Stateless: the same seed and shape
 * give the same mask, so a recomputed layer draws it again. The masks are neither tf.dropout's nor
 * the fused kernel's (three generators; each path is deterministic on its own).
 */
import * as tf from '@tensorflow/tfjs';
import { hashString64 } from '../../util/rng.js';

interface NativeTypeBinding {
  TF_ATTR_TYPE: number;
  TF_FLOAT: number;
  TF_INT32: number;
}

interface NativeExecutor {
  binding: NativeTypeBinding;
  executeSingleOutput(name: string, attrs: { name: string; type: number; value: number }[], inputs: tf.Tensor[]): tf.Tensor;
}

/** Uniform [0, 1) floats of `shape` from TensorFlow's stateless generator, keyed by the seed string. */
export function statelessUniform(shape: number[], seed: string): tf.Tensor {
  if (tf.getBackend() !== 'tensorflow') throw new Error(`statelessUniform needs the native backend, not ${tf.getBackend()}`);
  const native = tf.backend() as unknown as NativeExecutor;
  const b = native.binding;
  const h = hashString64(seed);
  // The key as two int32 words (the op's seed input is int32 [2]).
  const words = Int32Array.from([Number(BigInt.asIntN(32, h)), Number(BigInt.asIntN(32, h >> 32n))]);
  const type = (name: string, value: number) => ({ name, type: b.TF_ATTR_TYPE, value });
  return tf.tidy(() =>
    native.executeSingleOutput('StatelessRandomUniform', [type('dtype', b.TF_FLOAT), type('T', b.TF_INT32), type('Tseed', b.TF_INT32)], [
      tf.tensor1d(shape, 'int32'),
      tf.tensor1d(words, 'int32'),
    ]),
  );
}

/** x with each element kept (and divided by 1 - rate) or zeroed, the mask from statelessUniform. */
export function statelessDropout<T extends tf.Tensor>(x: T, rate: number, seed: string): T {
  if (!(rate >= 0 && rate < 1)) throw new Error(`statelessDropout: rate must be in [0, 1), got ${rate}`);
  const keep = 1 - rate;
  return tf.tidy(() => tf.mul(x, tf.div(tf.floor(tf.add(statelessUniform(x.shape, seed), keep)), keep))) as T;
}
