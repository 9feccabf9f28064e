/**
 * UnsortedSegmentSum on plain typed arrays: the backward pass of gather (embedding lookups,
 * label picks) scatters every row of dy into the row its index came from.
 *
 * Written by hand because tfjs has no fast version to reuse: the wasm backend has no
 * UnsortedSegmentSum at all, and the cpu one runs one equal/multiply/sum pass over ALL of x per
 * segment (O(numSegments * x.size), minutes for a 4k-vocab embedding). This is one pass.
 */
import type { DataType, TensorInfo } from '@tensorflow/tfjs';

export type NumericArray = Float32Array | Int32Array;

export interface SegmentSumPlan {
  /** Shape of the result: [numSegments, ...x.shape after the segment-id dims]. */
  outShape: number[];
  /** Number of rows (= segmentIds.size). */
  rows: number;
  /** Elements per row (x.size / rows). */
  inner: number;
  dtype: DataType;
}

/** Checks shapes like TensorFlow does (segmentIds.shape must be a prefix of x.shape). */
export function planSegmentSum(x: TensorInfo, segmentIds: TensorInfo, numSegments: number): SegmentSumPlan {
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum: numSegments must be a non-negative integer, got ${numSegments}`);
  }
  if (segmentIds.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum: segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum: x must be float32 or int32, got ${x.dtype}`);
  }
  const idRank = segmentIds.shape.length;
  const prefixOk =
    idRank <= x.shape.length && segmentIds.shape.every((d, i) => d === x.shape[i]);
  if (!prefixOk) {
    throw new Error(
      `UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
    );
  }
  const rows = segmentIds.shape.reduce((a, b) => a * b, 1);
  const innerShape = x.shape.slice(idRank);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  return { outShape: [numSegments, ...innerShape], rows, inner, dtype: x.dtype };
}

/**
 * out[id[r], :] += x[r, :] for every row r. Negative ids are dropped (TensorFlow semantics);
 * ids >= numSegments are an error. `out` must be zero-filled and hold numSegments * inner values.
 */
export function segmentSumInto(
  x: NumericArray,
  ids: Int32Array,
  plan: SegmentSumPlan,
  out: NumericArray,
): void {
  const { rows, inner } = plan;
  const numSegments = plan.outShape[0];
  for (let r = 0; r < rows; r++) {
    const id = ids[r];
    if (id < 0) continue;
    if (id >= numSegments) {
      throw new Error(`UnsortedSegmentSum: segment id ${id} at row ${r} is not in [0, ${numSegments})`);
    }
    const src = r * inner;
    const dst = id * inner;
    for (let j = 0; j < inner; j++) out[dst + j] += x[src + j];
  }
}
