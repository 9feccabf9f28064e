import * as tf from '@tensorflow/tfjs';

/**
 * Global-norm clipping as torch.nn.utils.clip_grad_norm_: the norm over all gradients together,
 * scale = maxNorm / (norm + 1e-6) applied only when below 1. Returns new tensors (the inputs are
 * left alone) and the pre-clip norm, which is NaN or Infinity when a gradient is not finite.
 */
export function clipByGlobalNorm(grads: readonly tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  const norm = globalNorm(grads);
  const coef = maxNorm / (norm + 1e-6);
  if (!Number.isFinite(norm) || !(maxNorm > 0) || coef >= 1) {
    return { grads: grads.map((g) => g.clone()), norm };
  }
  const clipped = tf.tidy(() => {
    const scale = tf.scalar(coef);
    return grads.map((g) => tf.mul(g, scale));
  });
  return { grads: clipped, norm };
}

/** sqrt(sum of squares) over every element of every tensor. */
export function globalNorm(grads: readonly tf.Tensor[]): number {
  if (grads.length === 0) return 0;
  return tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))).dataSync()[0]);
}

/**
 * Sums gradients over the micro-batches of one optimizer step. Each micro-batch loss is already
 * divided by the weight of the whole accumulation group, so the sum equals the gradient of the
 * group's masked mean exactly (not a mean of per-micro-batch means).
 */
export class GradientAccumulator {
  private sums: tf.Tensor[] | null = null;
  microBatches = 0;

  /** Adds `grads` (aligned with the parameter list) and takes ownership of them. */
  add(grads: tf.Tensor[]): void {
    if (this.sums === null) {
      this.sums = grads;
    } else {
      const previous = this.sums;
      if (previous.length !== grads.length) throw new Error('GradientAccumulator: gradient lists differ in length');
      this.sums = previous.map((s, i) => tf.add(s, grads[i]));
      tf.dispose(previous);
      tf.dispose(grads);
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
