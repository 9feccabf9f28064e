/**
 * Kernels and gradients that let the tfjs backends TRAIN our models.
 *
 * - wasm UnsortedSegmentSum: tfjs-backend-wasm 4.22 has every other kernel the model's forward
 *   and backward passes need, but not this one, the gradient of gather (embedding lookups,
 *   label picks): tf.grad through tf.gather throws "Kernel 'UnsortedSegmentSum' not registered
 *   for backend 'wasm'".
 * - wasm GatherV2 with batchDims > 0: the stock kernel returns wrong values (see
 *   kernels/gather-batched.ts); batchDims 0 still runs the stock kernel.
 * - wasm BatchMatMul: the stock kernel leaves XNNPACK for a slow scalar loop on any transposed
 *   or batched product, i.e. the whole backward pass and attention (kernels/batch-matmul-wasm.ts).
 * - wasm Identity and same-dtype Cast: by reference instead of a copy (see identityByReference).
 * - cpu UnsortedSegmentSum: the stock one is O(numSegments * x.size) (one masked pass over the
 *   whole input per segment); the same one-pass implementation replaces it.
 * - cpu Slice, SplitV and broadcasting binary ops: element-by-element index arithmetic in the
 *   stock kernels (kernels/cpu-fast.ts).
 * - gradients (every backend): StridedSlice has none in tfjs; BatchMatMul's fails when batch
 *   dims broadcast; Tile's fails above rank 4 and slices dy once per repetition; GatherV2's
 *   copies the embedding-sized gradient through two identity transposes.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { planSegmentSum, segmentSumInto, type NumericArray } from './kernels/unsorted-segment-sum.js';
import { stridedSliceGradConfig } from './kernels/strided-slice-grad.js';
import { gatherBatchedInto } from './kernels/gather-batched.js';
import { broadcastSafeMatMulGrad, isBroadcastSafe } from './kernels/batch-matmul-grad.js';
import { tileGradConfig } from './kernels/tile-grad.js';
import { xnnpackBatchMatMul } from './kernels/batch-matmul-wasm.js';
import { directGatherGrad, isDirectGatherGrad } from './kernels/gather-grad.js';
import { BROADCAST_KERNELS, fastBroadcastCpu, fastSliceCpu, fastSplitVCpu } from './kernels/cpu-fast.js';

function numSegmentsOf(attrs: NamedAttrMap | undefined): number {
  return Number((attrs as { numSegments?: number } | undefined)?.numSegments);
}

/**
 * wasm: output allocated on the wasm heap first, then zero-copy views of inputs and output
 * (views taken before an allocation may be detached when the heap grows).
 */
const unsortedSegmentSumWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as unknown as BackendWasm;
  const x = inputs.x as TensorInfo;
  const segmentIds = inputs.segmentIds as TensorInfo;
  const plan = planSegmentSum(x, segmentIds, numSegmentsOf(attrs));
  const out = wasm.makeOutput(plan.outShape, plan.dtype);
  const outValues = wasm.typedArrayFromHeap(out) as NumericArray;
  outValues.fill(0);
  if (plan.rows > 0 && plan.inner > 0) {
    const xValues = wasm.typedArrayFromHeap(x) as NumericArray;
    const ids = wasm.typedArrayFromHeap(segmentIds) as Int32Array;
    try {
      segmentSumInto(xValues, ids, plan, outValues);
    } catch (err) {
      wasm.disposeData(out.dataId);
      throw err;
    }
  }
  return out;
};

/** Any backend whose data lives in JS typed arrays (cpu): readSync + write. */
const unsortedSegmentSumTyped: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as tf.KernelBackend;
  const x = inputs.x as TensorInfo;
  const segmentIds = inputs.segmentIds as TensorInfo;
  const plan = planSegmentSum(x, segmentIds, numSegmentsOf(attrs));
  const size = plan.outShape.reduce((a, b) => a * b, 1);
  const outValues = plan.dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
  if (plan.rows > 0 && plan.inner > 0) {
    const xValues = backend.readSync(x.dataId) as NumericArray;
    const ids = backend.readSync(segmentIds.dataId) as Int32Array;
    segmentSumInto(xValues, ids, plan, outValues);
  }
  const dataId = backend.write(outValues, plan.outShape, plan.dtype);
  return { dataId, shape: plan.outShape, dtype: plan.dtype };
};

/** The stock wasm GatherV2 for batchDims 0, our typed-array gather for batchDims > 0. */
function gatherV2Wasm(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
    if (!batchDims) return stock.kernelFunc(args);
    const wasm = backend as unknown as BackendWasm;
    const x = inputs.x as TensorInfo;
    const indices = inputs.indices as TensorInfo;
    const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
    const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(
      x as tf.Tensor, indices as tf.Tensor, parsedAxis, batchDims,
    );
    const numIndices = indices.shape.reduce((a, b) => a * b, 1) / info.batchSize;
    const out = wasm.makeOutput(info.outputShape, x.dtype);
    if (info.outputShape.reduce((a, b) => a * b, 1) === 0) return out;
    try {
      gatherBatchedInto(
        wasm.typedArrayFromHeap(x) as NumericArray,
        wasm.typedArrayFromHeap(indices) as Int32Array,
        { ...info, numIndices },
        wasm.typedArrayFromHeap(out) as NumericArray,
      );
    } catch (err) {
      wasm.disposeData(out.dataId);
      throw err;
    }
    return out;
  };
  // setupFunc binds the stock kernel's C++ entry point when the backend initialises.
  return { kernelName: tf.GatherV2, backendName: 'wasm', kernelFunc, setupFunc: stock.setupFunc };
}

/**
 * wasm Identity (and Cast to the same dtype) by reference, as the cpu backend does: the stock
 * kernels copy the buffer, and tfjs runs Identity on every tensor an op saves for its gradient,
 * so a training step of the bench model copied ~100 MB (4% of the step). No wasm kernel writes
 * into its inputs, so sharing a buffer (reference counted, as Reshape does) is safe.
 */
const identityByReference: KernelFunc = ({ inputs, backend }) => {
  const x = inputs.x as TensorInfo;
  if (x.dtype === 'string') throw new Error('wasm Identity: string tensors are not supported');
  (backend as unknown as BackendWasm).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
};

function castWasm(stock: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const x = args.inputs.x as TensorInfo;
    const { dtype } = args.attrs as unknown as { dtype: string };
    return dtype === x.dtype ? identityByReference(args) : stock.kernelFunc(args);
  };
  return { kernelName: tf.Cast, backendName: 'wasm', kernelFunc, setupFunc: stock.setupFunc };
}

const identityWasmConfig: KernelConfig = { kernelName: tf.Identity, backendName: 'wasm', kernelFunc: identityByReference };

const unsortedSegmentSumWasmConfig: KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSumWasm,
};
let gatherWasmConfig: KernelConfig | null = null;
let matMulWasmConfig: KernelConfig | null = null;
let castWasmConfig: KernelConfig | null = null;

function stockWasmKernel(name: string): KernelConfig {
  const stock = tf.getKernel(name, 'wasm');
  if (!stock) throw new Error(`the wasm backend has no ${name} kernel (is @tensorflow/tfjs-backend-wasm imported?)`);
  return stock;
}

function wasmKernels(): KernelConfig[] {
  gatherWasmConfig ??= gatherV2Wasm(stockWasmKernel(tf.GatherV2));
  matMulWasmConfig ??= xnnpackBatchMatMul(stockWasmKernel(tf.BatchMatMul), stockWasmKernel(tf.Transpose));
  castWasmConfig ??= castWasm(stockWasmKernel(tf.Cast));
  return [unsortedSegmentSumWasmConfig, gatherWasmConfig, matMulWasmConfig, identityWasmConfig, castWasmConfig];
}

let cpuFastConfigs: KernelConfig[] | null = null;

function cpuKernels(): KernelConfig[] {
  if (!cpuFastConfigs) {
    const stock = (name: string) => {
      const config = tf.getKernel(name, 'cpu');
      if (!config) throw new Error(`the cpu backend has no ${name} kernel`);
      return config;
    };
    cpuFastConfigs = [
      { kernelName: tf.UnsortedSegmentSum, backendName: 'cpu', kernelFunc: unsortedSegmentSumTyped },
      fastSliceCpu(stock(tf.Slice)),
      fastSplitVCpu(stock(tf.SplitV)),
      ...Object.keys(BROADCAST_KERNELS).map((name) => fastBroadcastCpu(name, stock(name))),
    ];
  }
  return cpuFastConfigs;
}

/** Registers (or replaces) each config unless exactly this function is already registered. */
function install(configs: KernelConfig[]): string[] {
  const changed: string[] = [];
  for (const config of configs) {
    const existing = tf.getKernel(config.kernelName, config.backendName);
    if (existing?.kernelFunc === config.kernelFunc) continue;
    if (existing) tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel(config);
    changed.push(config.kernelName);
  }
  return changed;
}

/**
 * Registers the kernels the wasm backend lacks or gets wrong for training. Needs
 * @tensorflow/tfjs-backend-wasm imported. Idempotent; returns the kernels it changed.
 */
export function registerWasmTrainingKernels(): string[] {
  return install(wasmKernels());
}

/**
 * Replaces the cpu backend's slow UnsortedSegmentSum with the one-pass version, and its Slice,
 * SplitV and broadcasting Add/Sub/Multiply/RealDiv with kernels/cpu-fast.ts. Idempotent.
 */
export function registerCpuFastKernels(): string[] {
  return install(cpuKernels());
}

/**
 * Registers the gradients tfjs lacks or gets wrong, for every backend: StridedSlice (none in
 * tfjs; a gradient a later tfjs ships itself is left in place), BatchMatMul (broadcast batch
 * dims), Tile (any rank) and GatherV2 (no identity transposes). Idempotent; returns what it
 * changed.
 */
export function registerTrainingGradients(): string[] {
  const changed: string[] = [];
  if (!tf.getGradient(stridedSliceGradConfig.kernelName)) {
    tf.registerGradient(stridedSliceGradConfig);
    changed.push(`${stridedSliceGradConfig.kernelName} (gradient)`);
  }
  const matMulGrad = tf.getGradient(tf.BatchMatMul);
  if (matMulGrad && !isBroadcastSafe(matMulGrad)) {
    tf.unregisterGradient(tf.BatchMatMul);
    tf.registerGradient(broadcastSafeMatMulGrad(matMulGrad));
    changed.push(`${tf.BatchMatMul} (gradient)`);
  }
  const gatherGrad = tf.getGradient(tf.GatherV2);
  if (gatherGrad && !isDirectGatherGrad(gatherGrad)) {
    tf.unregisterGradient(tf.GatherV2);
    tf.registerGradient(directGatherGrad(gatherGrad));
    changed.push(`${tf.GatherV2} (gradient)`);
  }
  if (tf.getGradient(tf.Tile)?.gradFunc !== tileGradConfig.gradFunc) {
    if (tf.getGradient(tf.Tile)) tf.unregisterGradient(tf.Tile);
    tf.registerGradient(tileGradConfig);
    changed.push(`${tf.Tile} (gradient)`);
  }
  return changed;
}
