/**
 * GatherV2 gradient without the two full-size transposes for the common case.
 *
 * tfjs 4.22's gradient always transposes dy to bring the gather axis first and transposes the
 * [numRows, ...] result back, even when the permutation is the identity (axis 0, the embedding
 * lookup): two copies of a vocab x hidden tensor per step, which on the cpu backend cost more
 * than the scatter itself. For axis 0 without batch dims the gradient is one
 * UnsortedSegmentSum of dy reshaped to [indices.size, ...row shape]; every other case keeps
 * the stock gradient.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs';

const wrapped = new WeakSet<GradConfig['gradFunc']>();

export function directGatherGrad(base: GradConfig): GradConfig {
  const gradFunc: GradConfig['gradFunc'] = (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x, indices] = saved;
    const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
    const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
    if (parsedAxis !== 0 || batchDims) return base.gradFunc(dy, saved, attrs);
    const grad = dy as Tensor;
    return {
      x: () => {
        const rows = tf.reshape(grad, [indices.size, ...x.shape.slice(1)]);
        return tf.unsortedSegmentSum(rows, tf.reshape(indices, [indices.size]) as tf.Tensor1D, x.shape[0]);
      },
      // As the stock gradient: indices are integers and get no real gradient.
      indices: () => indices,
    };
  };
  wrapped.add(gradFunc);
  return { kernelName: base.kernelName, inputsToSave: base.inputsToSave, gradFunc };
}

export function isDirectGatherGrad(config: GradConfig | undefined): boolean {
  return config !== undefined && wrapped.has(config.gradFunc);
}
