/**
 * wasm BatchMatMul that always runs on XNNPACK.
 *
 * tfjs-backend-wasm 4.22 sends a matmul to XNNPACK's fully-connected operator only when neither
 * input is transposed and both have batch size 1; everything else (the backward pass of every
 * linear layer, which multiplies by a transposed operand, and all batched attention products)
 * runs a scalar blocked loop in C++ that is 10-30x slower: 40 of 44 s of a training step of the
 * bench model. This kernel reduces every case to plain [M,K] x [K,N] products:
 * - a transposed operand is transposed once, whole, by the wasm Transpose kernel (a copy far
 *   cheaper than the slow loop);
 * - a batched left operand against one right matrix is folded into one tall [batch*M, K] matrix;
 * - otherwise each batch item is its own XNNPACK call on views into the batched buffers
 *   (tensors registered at an offset inside the parent's heap memory, no copies).
 * Batch shapes that broadcast other than "one side has batch 1" keep the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';

type WasmMatMul = (
  aId: number, aShape: Uint8Array, aRank: number,
  bId: number, bShape: Uint8Array, bRank: number,
  transposeA: boolean, transposeB: boolean, outId: number,
) => void;

interface TensorRecord {
  id: number;
  memoryOffset: number;
}

interface WasmInternals {
  dataIdMap: { get(dataId: object): TensorRecord; delete(dataId: object): void };
  wasm: {
    cwrap: (name: string, ret: null, args: string[]) => WasmMatMul;
    tfjs: { disposeData(id: number): void };
  };
}

function internals(backend: BackendWasm): WasmInternals {
  return backend as unknown as WasmInternals;
}

function shapeBytes(shape: readonly number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

/** A tensor over `size` floats of `parent` starting at element `offset` (no allocation). */
function view(backend: BackendWasm, parent: TensorInfo, offset: number, shape: number[]): TensorInfo {
  const base = internals(backend).dataIdMap.get(parent.dataId).memoryOffset;
  return backend.makeOutput(shape, 'float32', base + offset * 4);
}

/**
 * Forgets a view without freeing its memory (the parent owns it). disposeData on the C++ side
 * also drops the XNNPACK operator cached for the view, as for any disposed weight tensor.
 */
function dropView(backend: BackendWasm, v: TensorInfo): void {
  const wasm = internals(backend);
  const record = wasm.dataIdMap.get(v.dataId);
  wasm.wasm.tfjs.disposeData(record.id);
  wasm.dataIdMap.delete(v.dataId);
}

function transposeLast2(backend: BackendWasm, transpose: KernelConfig, x: TensorInfo, batch: number, rows: number, cols: number): TensorInfo {
  const x3: TensorInfo = { dataId: x.dataId, shape: [batch, rows, cols], dtype: x.dtype };
  return transpose.kernelFunc({ inputs: { x: x3 }, backend, attrs: { perm: [0, 2, 1] } }) as TensorInfo;
}

export function xnnpackBatchMatMul(stock: KernelConfig, transpose: KernelConfig): KernelConfig {
  // Bound lazily: a kernel registered after the backend initialised never sees its setupFunc.
  const bound = new WeakMap<object, WasmMatMul>();
  const matMulOf = (backend: BackendWasm): WasmMatMul => {
    let fn = bound.get(backend);
    if (!fn) {
      fn = internals(backend).wasm.cwrap(tf.BatchMatMul, null, [
        'number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number',
      ]);
      bound.set(backend, fn);
    }
    return fn;
  };

  const kernelFunc: KernelFunc = (args) => {
    const { inputs, attrs } = args;
    const backend = args.backend as unknown as BackendWasm;
    const a = inputs.a as TensorInfo;
    const b = inputs.b as TensorInfo;
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return stock.kernelFunc(args);
    const aRank = a.shape.length;
    const bRank = b.shape.length;
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    const [aRows, aCols] = [a.shape[aRank - 2], a.shape[aRank - 1]];
    const [bRows, bCols] = [b.shape[bRank - 2], b.shape[bRank - 1]];
    const m = transposeA ? aCols : aRows;
    const k = transposeA ? aRows : aCols;
    const n = transposeB ? bRows : bCols;
    const plain = !transposeA && !transposeB && batchA === 1 && batchB === 1;
    const broadcastable = batchA === batchB || batchA === 1 || batchB === 1;
    const mismatch = (transposeB ? bCols : bRows) !== k;
    // The stock kernel raises the shape errors and handles general broadcasting.
    if ((plain && k > 0) || !broadcastable || mismatch) return stock.kernelFunc(args);

    const batch = Math.max(batchA, batchB);
    const outBatchShape = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const out = backend.makeOutput([...outBatchShape, m, n], 'float32');
    if (m * n * batch === 0) return out;
    if (k === 0) {
      // XNNPACK rejects an empty inner dimension (the stock kernel returns garbage).
      backend.typedArrayFromHeap(out).fill(0);
      return out;
    }

    const matMul = matMulOf(backend);
    const temps: TensorInfo[] = [];
    try {
      const aPlain = transposeA ? transposeLast2(backend, transpose, a, batchA, aRows, aCols) : a;
      if (aPlain !== a) temps.push(aPlain);
      const bPlain = transposeB ? transposeLast2(backend, transpose, b, batchB, bRows, bCols) : b;
      if (bPlain !== b) temps.push(bPlain);
      const run = (x: TensorInfo, xShape: number[], w: TensorInfo, wShape: number[], y: TensorInfo) => {
        const map = internals(backend).dataIdMap;
        matMul(map.get(x.dataId).id, shapeBytes(xShape), 3, map.get(w.dataId).id, shapeBytes(wShape), 3, false, false, map.get(y.dataId).id);
      };
      if (batchB === 1) {
        // [batch*M, K] x [K, N]: one call; the rows of every batch item are contiguous.
        run(aPlain, [1, batchA * m, k], bPlain, [1, k, n], out);
        return out;
      }
      for (let i = 0; i < batch; i++) {
        const views: TensorInfo[] = [];
        try {
          const ai = batchA === 1 ? aPlain : view(backend, aPlain, i * m * k, [1, m, k]);
          if (ai !== aPlain) views.push(ai);
          const bi = view(backend, bPlain, i * k * n, [1, k, n]);
          views.push(bi);
          const oi = view(backend, out, i * m * n, [1, m, n]);
          views.push(oi);
          run(ai, [1, m, k], bi, [1, k, n], oi);
        } finally {
          for (const v of views) dropView(backend, v);
        }
      }
      return out;
    } catch (err) {
      backend.disposeData(out.dataId);
      throw err;
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
  return { kernelName: tf.BatchMatMul, backendName: 'wasm', kernelFunc, setupFunc: stock.setupFunc };
}
