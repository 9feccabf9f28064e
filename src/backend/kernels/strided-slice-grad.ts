/**
 * Gradient of StridedSlice, which tfjs 4.22 does not define on any backend (tf.grad through
 * tf.stridedSlice throws "gradient function not found for StridedSlice").
 *
 * slice_util.sliceInfo resolves the masks to a dense begin/end/strides per dimension of x; output
 * position `loc` (in the rank-of-x shape computeOutShape gives) reads input position
 * begin + loc * strides, so the gradient scatters dy back to exactly those positions.
 * (sliceInfo's own finalShapeSparse is not that shape when new-axis and shrink masks mix.) Written by hand because tfjs has no StridedSliceGrad.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs';

interface StridedSliceAttrs {
  begin: number[];
  end: number[];
  strides: number[];
  beginMask: number;
  endMask: number;
  ellipsisMask: number;
  newAxisMask: number;
  shrinkAxisMask: number;
}

/** Flat indices into x (row-major) of every element the strided slice reads, in output order. */
export function stridedSliceSourceIndices(
  xShape: number[],
  begin: number[],
  strides: number[],
  outShape: number[],
): Int32Array {
  const rank = xShape.length;
  const total = outShape.reduce((a, b) => a * b, 1);
  const indices = new Int32Array(total);
  if (total === 0) return indices;
  const xStrides = new Array<number>(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) xStrides[d] = xStrides[d + 1] * xShape[d + 1];
  // Odometer over the output shape; `flat` tracks the matching x offset incrementally.
  const loc = new Array<number>(rank).fill(0);
  let flat = 0;
  for (let d = 0; d < rank; d++) flat += begin[d] * xStrides[d];
  for (let i = 0; i < total; i++) {
    indices[i] = flat;
    for (let d = rank - 1; d >= 0; d--) {
      loc[d]++;
      flat += strides[d] * xStrides[d];
      if (loc[d] < outShape[d]) break;
      flat -= loc[d] * strides[d] * xStrides[d];
      loc[d] = 0;
    }
  }
  return indices;
}

export const stridedSliceGradConfig: GradConfig = {
  kernelName: tf.StridedSlice,
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x] = saved;
    const a = attrs as unknown as StridedSliceAttrs;
    const info = tf.slice_util.sliceInfo(
      x.shape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask, a.newAxisMask,
      a.shrinkAxisMask,
    );
    const grad = dy as Tensor;
    return {
      x: () => {
        if (info.isIdentity) return tf.reshape(grad, x.shape);
        const outShape = tf.slice_util.computeOutShape(info.begin, info.end, info.strides);
        const src = stridedSliceSourceIndices(x.shape, info.begin, info.strides, outShape);
        return tf.tidy(() => {
          const idx = tf.tensor2d(src, [src.length, 1], 'int32');
          const flat = tf.scatterND(idx, tf.reshape(grad, [src.length]), [x.size]);
          return tf.reshape(flat, x.shape);
        });
      },
    };
  },
};
