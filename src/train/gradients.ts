import * as tf from '@tensorflow/tfjs';
import { fusedSumOfSquares } from '../backend/fused/fused-ops.js';
import { kernelInfo, type KernelChoice } from '../backend/fused/kernel-choice.js';

/**
 * The factor torch.nn.utils.clip_grad_norm_ scales gradients by: maxNorm / (norm + 1e-6) when
 * that is below 1, else 1 (also 1 when the norm is not finite: the caller stops on that anyway).
 */
export function clipCoefficient(norm: number, maxNorm: number): number {
  if (!Number.isFinite(norm) || !(maxNorm > 0)) return 1;
  const coef = maxNorm / (norm + 1e-6);
  return coef < 1 ? coef : 1;
}

/**
 * Global-norm clipping as torch.nn.utils.clip_grad_norm_, returning new tensors (the inputs are
 * left alone) and the pre-clip norm, which is NaN or Infinity when a gradient is not finite.
 * The training step does not call this: it folds clipCoefficient into the optimizer update, so
 * no second copy of the gradients is made.
 */
export function clipByGlobalNorm(grads: readonly tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  const norm = globalNorm(grads);
  const coef = clipCoefficient(norm, maxNorm);
  if (coef === 1) return { grads: grads.map((g) => g.clone()), norm };
  const clipped = tf.tidy(() => {
    const scale = tf.scalar(coef);
    return grads.map((g) => tf.mul(g, scale));
  });
  return { grads: clipped, norm };
}

/**
 * The sum of squares over every element of every tensor, as a scalar tensor. With the fused
 * kernels (train.kernels; default: the process-wide choice) one native call for all of them,
 * where the eager ops take two per tensor. Eagerly, each tensor's square is released as soon as
 * it is summed, so only one tensor-sized temporary exists at a time.
 */
export function sumOfSquares(tensors: readonly tf.Tensor[], kernels?: KernelChoice): tf.Scalar {
  if (tensors.length === 0) return tf.scalar(0);
  if (kernelInfo(kernels).used === 'fused') return fusedSumOfSquares(tensors);
  const partial = tensors.map((g) => tf.tidy(() => tf.sum(tf.square(g))));
  try {
    return tf.addN(partial) as tf.Scalar;
  } finally {
    tf.dispose(partial);
  }
}

/** sqrt(sum of squares) over every element of every tensor. */
export function globalNorm(grads: readonly tf.Tensor[], kernels?: KernelChoice): number {
  if (grads.length === 0) return 0;
  const sumSq = sumOfSquares(grads, kernels);
  try {
    return Math.sqrt(sumSq.dataSync()[0]);
  } finally {
    sumSq.dispose();
  }
}

/**
 * Sums gradients over the micro-batches of one optimizer step. Each micro-batch loss is already
 * divided by the weight of the whole accumulation group, so the sum equals the gradient of the
 * group's masked mean exactly (not a mean of per-micro-batch means). Sums are updated one tensor
 * at a time and the addends released at once, so accumulation holds one set of sums plus one
 * tensor, never two whole sets.
 */
export class GradientAccumulator {
  private sums: tf.Tensor[] | null = null;
  microBatches = 0;

  /** Adds `grads` (aligned with the parameter list) and takes ownership of them. */
  add(grads: tf.Tensor[]): void {
    if (this.sums === null) {
      this.sums = grads.slice();
    } else {
      const sums = this.sums;
      if (sums.length !== grads.length) throw new Error('GradientAccumulator: gradient lists differ in length');
      for (let i = 0; i < sums.length; i++) {
        const next = tf.add(sums[i], grads[i]);
        sums[i].dispose();
        grads[i].dispose();
        sums[i] = next;
      }
    }
    this.microBatches += 1;
  }

  /** The summed gradients; the caller owns them and the accumulator is empty afterwards. */
  take(): tf.Tensor[] {
    if (this.sums === null) throw new Error('GradientAccumulator: nothing accumulated');
    const out = this.sums;
    this.sums = null;
    this.microBatches = 0;
    return out;
  }

  reset(): void {
    if (this.sums) tf.dispose(this.sums);
    this.sums = null;
    this.microBatches = 0;
  }
}
