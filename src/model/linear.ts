import * as tf from '@tensorflow/tfjs';
import { fusedDropout } from '../backend/fused/fused-ops.js';
import { statelessDropout } from '../backend/kernels/stateless-dropout.js';

/**
 * The decoder's linear projection, with an optional low-rank (LoRA) term: the one place a
 * projection is computed, so adapters (src/model/lora.ts) and kernels meet at one function.
 */

/** One adapted projection's low-rank pair, in the internal layout. */
export interface LowRankAdapter {
  /** [in, r] */
  a: tf.Tensor2D;
  /** [r, out] */
  b: tf.Tensor2D;
  scale: number;
  /** The dropout to apply to the adapter's input now (null outside training), seeded so a recomputed forward draws the same mask. */
  dropout(): { rate: number; seed: string } | null;
}

/**
 * A linear projection x W (+ b), plus the adapter's low-rank term when there is one. The scale is
 * applied to the [N, r] product, the narrowest tensor of the term. `fused`: the forward pass runs
 * the fused native kernels, so the adapter's dropout is the fused kernel's (adapterDropout).
 */
export function linear(x: tf.Tensor2D, weight: tf.Tensor2D, bias?: tf.Tensor1D, adapter?: LowRankAdapter, fused = false): tf.Tensor2D {
  const base = (bias ? biasedMatMul(x, weight, bias) : tf.matMul(x, weight)) as tf.Tensor2D;
  if (!adapter) return base;
  const drop = adapter.dropout();
  const input = drop ? adapterDropout(x, drop.rate, drop.seed, fused) : x;
  const low = tf.mul(tf.matMul(input, adapter.a), adapter.scale) as tf.Tensor2D;
  return tf.add(base, tf.matMul(low, adapter.b)) as tf.Tensor2D;
}

/**
 * The adapter's dropout: the fused kernel's (mask drawn in native code, drawn again backward); on
 * the native backend without it, TensorFlow's stateless generator on the device; elsewhere
 * tf.dropout. Each is deterministic in its seed, so a recomputed layer gets the same mask.
 */
function adapterDropout(x: tf.Tensor2D, rate: number, seed: string, fused: boolean): tf.Tensor2D {
  if (fused) return fusedDropout(x, rate, seed);
  if (tf.getBackend() === 'tensorflow') return statelessDropout(x, rate, seed);
  return tf.dropout(x, rate, undefined, seed) as tf.Tensor2D;
}

/**
 * x W + b. On the native backend as a product and an add: tfjs-node's "fused" matMul is those two
 * TensorFlow ops anyway, wrapped in reshapes to 3-D and back and a custom gradient, which cost
 * about 8% of a bench training step (q, k and v carry biases). wasm and cpu have a true fused
 * kernel.
 */
function biasedMatMul(x: tf.Tensor2D, weight: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor {
  if (tf.getBackend() === 'tensorflow') return tf.add(tf.matMul(x, weight), bias);
  return tf.fused.matMul({ a: x, b: weight, bias });
}
