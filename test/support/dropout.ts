import type * as tf from '@tensorflow/tfjs';

/**
 * How y = dropout(x) dropped: the fraction of zeros, and how many kept elements differ from
 * keptValue(x) by more than tol (relative, at least 1 in scale).
 */
export function dropoutCounts(x: tf.Tensor, y: tf.Tensor, keptValue: (x: number) => number, tol = 0): { droppedFraction: number; wrong: number } {
  const xs = x.dataSync();
  const ys = y.dataSync();
  let dropped = 0;
  let wrong = 0;
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] === 0) dropped++;
    else if (Math.abs(ys[i] - keptValue(xs[i])) > tol * Math.max(1, Math.abs(ys[i]))) wrong++;
  }
  return { droppedFraction: dropped / ys.length, wrong };
}
