/**
 * GatherV2 with batchDims > 0 on typed arrays.
 *
 * tfjs-backend-wasm 4.22's C++ Gather reads the indices of batch b from offset b * batchSize
 * instead of b * (indices per batch), so whenever those two differ it returns wrong values or
 * reads past the indices buffer (e.g. x [2,5], indices [[4,0,1],[2,3,4]], axis 1, batchDims 1
 * gives [[4,0,1],[6,7,8]] instead of [[4,0,1],[7,8,9]]). batchDims 0 is correct there and keeps
 * using the wasm kernel; this covers the batched case (picking step-token positions per row).
 */
import type { NumericArray } from './unsorted-segment-sum.js';

export interface BatchedGatherShape {
  batchSize: number;
  outerSize: number;
  dimSize: number;
  sliceSize: number;
  /** Indices per batch entry. */
  numIndices: number;
}

/** out[b, o, i, s] = x[b, o, idx[b, i], s]; throws on an index outside [0, dimSize). */
export function gatherBatchedInto(
  x: NumericArray,
  indices: Int32Array,
  shape: BatchedGatherShape,
  out: NumericArray,
): void {
  const { batchSize, outerSize, dimSize, sliceSize, numIndices } = shape;
  let dst = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let o = 0; o < outerSize; o++) {
      const rowBase = (b * outerSize + o) * dimSize;
      for (let i = 0; i < numIndices; i++) {
        const index = indices[b * numIndices + i];
        if (index < 0 || index >= dimSize) {
          throw new Error(`GatherV2: the index value ${index} is not in [0, ${dimSize - 1}]`);
        }
        const src = (rowBase + index) * sliceSize;
        for (let s = 0; s < sliceSize; s++) out[dst++] = x[src + s];
      }
    }
  }
}
