/**
 * Faster cpu-backend kernels for the layouts the PRM uses.
 *
 * tfjs-backend-cpu 4.22 computes a non-contiguous Slice (and so SplitV, which RoPE uses every
 * layer) element by element through TensorBuffer.get/set with array spreads, and a binary op
 * whose inputs broadcast (RMSNorm's weight, RoPE's cos/sin, the attention bias) by converting
 * every flat index to a location array and back. Profiles of a toy training step put ~30% of
 * the time there plus the garbage it makes. These kernels do the same with an index odometer
 * over the outer dimensions and typed-array runs along the last one; they handle float32 and
 * int32 and hand every other case to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';

type Numeric = Float32Array | Int32Array;

interface CpuBackendData {
  data: { get(dataId: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Numeric): TensorInfo;
}

function cpu(backend: unknown): CpuBackendData {
  return backend as CpuBackendData;
}

function numeric(dtype: string): dtype is 'float32' | 'int32' {
  return dtype === 'float32' || dtype === 'int32';
}

function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

/** out = vals[begin : begin + size] of a row-major tensor of `shape`. */
export function sliceInto(vals: Numeric, shape: readonly number[], begin: readonly number[], size: readonly number[], out: Numeric): void {
  const rank = shape.length;
  if (out.length === 0) return;
  if (rank === 0) {
    out[0] = vals[0];
    return;
  }
  const strides = rowMajorStrides(shape);
  const inner = size[rank - 1];
  let src = 0;
  for (let d = 0; d < rank; d++) src += begin[d] * strides[d];
  const outer = out.length / inner;
  const index = new Array<number>(rank - 1).fill(0);
  for (let o = 0; o < outer; o++) {
    out.set(vals.subarray(src, src + inner), o * inner);
    for (let d = rank - 2; d >= 0; d--) {
      src += strides[d];
      if (++index[d] < size[d]) break;
      src -= strides[d] * size[d];
      index[d] = 0;
    }
  }
}

function sliceOf(backend: CpuBackendData, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const vals = backend.data.get(x.dataId).values as Numeric;
  const out = x.dtype === 'int32' ? new Int32Array(tf.util.sizeFromShape(size)) : new Float32Array(tf.util.sizeFromShape(size));
  sliceInto(vals, x.shape, begin, size, out);
  return backend.makeTensorInfo([...size], x.dtype, out);
}

export function fastSliceCpu(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const x = args.inputs.x as TensorInfo;
    if (!numeric(x.dtype)) return stock.kernelFunc(args);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [$begin, $size] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    tf.slice_util.assertParamsValid(x as tf.Tensor, $begin, $size);
    return sliceOf(cpu(args.backend), x, $begin, $size);
  };
  return { kernelName: tf.Slice, backendName: 'cpu', kernelFunc };
}

export function fastSplitVCpu(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const x = args.inputs.x as TensorInfo;
    if (!numeric(x.dtype)) return stock.kernelFunc(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const $axis = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
    const begin = new Array<number>(x.shape.length).fill(0);
    const size = [...x.shape];
    return sizes.map((s) => {
      size[$axis] = s;
      const piece = sliceOf(cpu(args.backend), x, begin, size);
      begin[$axis] += s;
      return piece;
    });
  };
  return { kernelName: tf.SplitV, backendName: 'cpu', kernelFunc };
}

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';

/**
 * out[i] = a[ia] (op) b[ib] over the broadcast shape, where ia/ib follow the output index with
 * stride 0 along broadcast dimensions. The op is switched outside the inner loop so that each
 * loop stays a plain typed-array expression for the JIT.
 */
export function broadcastInto(
  op: BinaryOp,
  a: Numeric,
  aShape: readonly number[],
  b: Numeric,
  bShape: readonly number[],
  outShape: readonly number[],
  out: Numeric,
): void {
  const rank = outShape.length;
  if (out.length === 0) return;
  const stridesFor = (shape: readonly number[]) => {
    const padded = [...new Array<number>(rank - shape.length).fill(1), ...shape];
    const strides = rowMajorStrides(padded);
    return padded.map((d, i) => (d === 1 && outShape[i] !== 1 ? 0 : strides[i]));
  };
  const aStrides = stridesFor(aShape);
  const bStrides = stridesFor(bShape);
  const inner = rank === 0 ? 1 : outShape[rank - 1];
  const aStep = rank === 0 ? 0 : aStrides[rank - 1];
  const bStep = rank === 0 ? 0 : bStrides[rank - 1];
  const outer = out.length / inner;
  const index = new Array<number>(Math.max(0, rank - 1)).fill(0);
  let ia = 0;
  let ib = 0;
  let io = 0;
  for (let o = 0; o < outer; o++) {
    let pa = ia;
    let pb = ib;
    const end = io + inner;
    switch (op) {
      case 'add':
        for (; io < end; io++, pa += aStep, pb += bStep) out[io] = a[pa] + b[pb];
        break;
      case 'sub':
        for (; io < end; io++, pa += aStep, pb += bStep) out[io] = a[pa] - b[pb];
        break;
      case 'mul':
        for (; io < end; io++, pa += aStep, pb += bStep) out[io] = a[pa] * b[pb];
        break;
      case 'div':
        for (; io < end; io++, pa += aStep, pb += bStep) out[io] = a[pa] / b[pb];
        break;
    }
    for (let d = rank - 2; d >= 0; d--) {
      ia += aStrides[d];
      ib += bStrides[d];
      if (++index[d] < outShape[d]) break;
      ia -= aStrides[d] * outShape[d];
      ib -= bStrides[d] * outShape[d];
      index[d] = 0;
    }
  }
}

export const BROADCAST_KERNELS: Record<string, BinaryOp> = {
  [tf.Add]: 'add',
  [tf.Sub]: 'sub',
  [tf.Multiply]: 'mul',
  [tf.RealDiv]: 'div',
};

/** The stock kernel unless both inputs are float32 and their shapes differ (broadcast). */
export function fastBroadcastCpu(kernelName: string, stock: KernelConfig): KernelConfig {
  const op = BROADCAST_KERNELS[kernelName];
  if (!op) throw new Error(`no fast broadcast for ${kernelName}`);
  const kernelFunc: KernelFunc = (args) => {
    const a = args.inputs.a as TensorInfo;
    const b = args.inputs.b as TensorInfo;
    const same = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
    if (same || a.dtype !== 'float32' || b.dtype !== 'float32') return stock.kernelFunc(args);
    const backend = cpu(args.backend);
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const out = new Float32Array(tf.util.sizeFromShape(outShape));
    broadcastInto(op, backend.data.get(a.dataId).values as Float32Array, a.shape, backend.data.get(b.dataId).values as Float32Array, b.shape, outShape, out);
    return backend.makeTensorInfo(outShape, 'float32', out);
  };
  return { kernelName, backendName: 'cpu', kernelFunc };
}
