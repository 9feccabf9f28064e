/**
 * Tile gradient for any rank, in one reshape and one sum.
 *
 * tfjs 4.22's Tile gradient throws "not implemented for rank-5 tensors yet" above rank 4 (a
 * GQA key/value repeat over [B, kvHeads, groups, T, D] is rank 5), and below that it adds one
 * slice of dy per repetition. Since tile lays copies out block by block, dy reshaped to
 * [r0, s0, r1, s1, ...] (reps r, input sizes s) summed over the r axes is the gradient.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs';

export const tileGradConfig: GradConfig = {
  kernelName: tf.Tile,
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x] = saved;
    const { reps } = attrs as unknown as { reps: number[] };
    const grad = dy as Tensor;
    return {
      x: () => {
        if (reps.every((r) => r === 1)) return tf.reshape(grad, x.shape);
        const split = x.shape.flatMap((s, d) => [reps[d], s]);
        const repAxes = x.shape.map((_, d) => 2 * d);
        return tf.reshape(tf.sum(tf.reshape(grad, split), repAxes), x.shape);
      },
    };
  },
};
