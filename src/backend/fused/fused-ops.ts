/**
 * prmkit's fused decoder kernels on the native backend (scripts/native/prmkit_fused.cc, built
 * into the tfjs-node binding by `npm run setup-native`), as tfjs kernels with gradients:
 *
 *   fusedAttention(q [B,T,H,D], k [B,T,Hk,D], v [B,T,Hk,D], mask [B,T]) -> [B,T,H,D]
 *       causal attention with the key padding mask and grouped-query heads, q already scaled;
 *       no [B,H,T,T] tensor forward or backward (the backward recomputes the probabilities
 *       from the row log-sum-exp the forward saves).
 *   fusedRopeAttention(q, k, v, mask, cos, sin, scale): the same with RoPE (and the 1/sqrt(D)
 *       scale of q) applied inside the kernel, forward and backward; also on the flat layout
 *       q [B*T,H*D], k and v [B*T,Hk*D] the decoder's projections have.
 *   fusedRopeAttentionRows(q [N,H,D], k, v, mask, cos, sin, rows [N], scale) -> [N,H,D]: its
 *       output at N chosen query positions only (the PRM's last layer, at the step tokens).
 *   fusedRmsNorm(x [N,C], w [C], eps) -> [N,C]
 *   fusedAddRmsNorm(x, r, w, eps) -> [x + r, RMSNorm(x + r)]   the residual add and the norm, one kernel
 *   fusedSwiGlu(gate, up) -> silu(gate) * up
 *   fusedAdamW(p, m, v, g, scalars) -> p'   one parameter's AdamW update, one pass; m and v in place
 *   copyIntoInPlace(dst, src, dstOffset, srcOffset, length)   a run of src's values over dst's, in place
 *   fusedSumOfSquares(tensors) -> scalar   the gradients' squared global norm in one call
 *   fusedDropout(x, rate, seed) -> x * mask / (1 - rate)   the mask a pure function of seed and position
 *
 * The eager ops in src/model/qwen2.ts stay the reference (and the path of wasm, cpu and of a
 * binding built before these kernels); test/backend/fused-kernels.test.ts holds the two to
 * each other. One difference by design: a query row that may see no key at all (a left-padded
 * position) gets 0 here, where the eager softmax of all -1e9 biases averages arbitrary values;
 * both are "finite but meaningless", and no real position reads them.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs';
import { hashString64 } from '../../util/rng.js';

const OPS = ['PrmkitAttention', 'PrmkitAttentionGrad', 'PrmkitRopeAttention', 'PrmkitRopeAttentionGrad', 'PrmkitRopeAttentionRows', 'PrmkitRopeAttentionRowsGrad', 'PrmkitRmsNorm', 'PrmkitRmsNormGrad', 'PrmkitSwiGlu', 'PrmkitSwiGluGrad', 'PrmkitAdamWInPlace', 'PrmkitCopyIntoInPlace', 'PrmkitSumSquares', 'PrmkitAddRmsNorm', 'PrmkitAddRmsNormGrad', 'PrmkitDropout'] as const;

interface OpAttr {
  name: string;
  type: number;
  value: number;
}

interface FusedBinding {
  isUsingGpuDevice?: () => boolean;
  prmkitFusedOps?: string[];
  prmkitFusedError?: string;
  TF_ATTR_FLOAT: number;
  TF_ATTR_INT: number;
}

interface NativeBackend {
  binding: FusedBinding;
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: TensorInfo[], numOutputs: number): Tensor[];
}

export type FusedAvailability = { ok: true } | { ok: false; reason: string };

/**
 * Can the backend in use run the fused kernels? The reason says why not (wasm/cpu backend, or
 * a native binding built without them).
 */
export function fusedKernelsAvailability(): FusedAvailability {
  const name = tf.getBackend();
  if (name !== 'tensorflow') return { ok: false, reason: `the ${name} backend has no fused kernels (native backend only)` };
  // Asked for every forward pass: the answer is kept per backend instance.
  const backend = tf.backend();
  let known = availabilityOf.get(backend);
  if (!known) availabilityOf.set(backend, (known = nativeAvailability((backend as unknown as Partial<NativeBackend>).binding)));
  if (known.ok) registerFusedKernels();
  return known;
}

const availabilityOf = new WeakMap<object, FusedAvailability>();

/** What a tfjs-node binding offers (exported for tests: bindings built without the kernels). */
export function nativeAvailability(binding: Partial<FusedBinding> | undefined): FusedAvailability {
  const ops = binding?.prmkitFusedOps;
  if (!Array.isArray(ops)) {
    return { ok: false, reason: "the native binding was built without prmkit's fused kernels (run 'npm run setup-native')" };
  }
  if (binding?.isUsingGpuDevice?.()) {
    // Registered for the CPU device only: on a GPU they would run on the host, with copies.
    return { ok: false, reason: 'the fused kernels are CPU kernels and this native backend runs on a GPU' };
  }
  const missing = OPS.filter((op) => !ops.includes(op));
  if (missing.length > 0) {
    const why = binding?.prmkitFusedError ? `: ${binding.prmkitFusedError}` : '';
    return { ok: false, reason: `the native binding lacks the fused ops ${missing.join(', ')}${why}` };
  }
  return { ok: true };
}

/**
 * Registers the tfjs kernels (native backend) and their gradients, once per tfjs engine (asked
 * of the registry: a second copy of this module must not register them again).
 */
function registerFusedKernels(): void {
  if (tf.getKernel('PrmkitAttention', 'tensorflow')) return;
  const forward = (op: (typeof OPS)[number], inputNames: string[], numOutputs: number, attrs: (a: NamedAttrMap, b: FusedBinding) => OpAttr[] = () => []) =>
    tf.registerKernel({
      kernelName: op,
      backendName: 'tensorflow',
      kernelFunc: ({ inputs, backend, attrs: a }) => {
        const native = backend as unknown as NativeBackend;
        const ins = inputNames.map((n) => inputs[n] as TensorInfo);
        const outs = native.executeMultipleOutputs(op, attrs(a ?? {}, native.binding), ins, numOutputs);
        return numOutputs === 1 ? outs[0] : outs;
      },
    });
  forward('PrmkitAttention', ['q', 'k', 'v', 'mask'], 2);
  forward('PrmkitAttentionGrad', ['q', 'k', 'v', 'mask', 'out', 'lse', 'dout'], 3);
  const scaleAttr = (a: NamedAttrMap, b: FusedBinding) => [{ name: 'scale', type: b.TF_ATTR_FLOAT, value: a.scale as number }];
  forward('PrmkitRopeAttention', ['q', 'k', 'v', 'mask', 'cos', 'sin'], 2, scaleAttr);
  forward('PrmkitRopeAttentionGrad', ['q', 'k', 'v', 'mask', 'cos', 'sin', 'out', 'lse', 'dout'], 3, scaleAttr);
  forward('PrmkitRopeAttentionRows', ['q', 'k', 'v', 'mask', 'cos', 'sin', 'rows'], 2, scaleAttr);
  forward('PrmkitRopeAttentionRowsGrad', ['q', 'k', 'v', 'mask', 'cos', 'sin', 'rows', 'out', 'lse', 'dout'], 3, scaleAttr);
  forward('PrmkitRmsNorm', ['x', 'w'], 2, (a, b) => [{ name: 'eps', type: b.TF_ATTR_FLOAT, value: a.eps as number }]);
  forward('PrmkitRmsNormGrad', ['dy', 'x', 'w', 'rstd'], 2);
  forward('PrmkitAddRmsNorm', ['x', 'r', 'w'], 3, (a, b) => [{ name: 'eps', type: b.TF_ATTR_FLOAT, value: a.eps as number }]);
  forward('PrmkitAddRmsNormGrad', ['dsum', 'dy', 'sum', 'w', 'rstd'], 2);
  forward('PrmkitDropout', ['x', 'key'], 1, (a, b) => [{ name: 'rate', type: b.TF_ATTR_FLOAT, value: a.rate as number }]);
  forward('PrmkitSwiGlu', ['gate', 'up'], 1);
  forward('PrmkitSwiGluGrad', ['dy', 'gate', 'up'], 2);
  forward('PrmkitAdamWInPlace', ['p', 'm', 'v', 'g'], 1, (a, b) => ADAMW_ATTRS.map((name) => ({ name, type: b.TF_ATTR_FLOAT, value: a[name] as number })));
  tf.registerKernel({
    kernelName: 'PrmkitSumSquares',
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend }) => {
      const native = backend as unknown as NativeBackend;
      const xs = Object.values(inputs) as TensorInfo[];
      return native.executeMultipleOutputs('PrmkitSumSquares', [{ name: 'N', type: native.binding.TF_ATTR_INT, value: xs.length }], xs, 1)[0];
    },
  });
  for (const g of GRADIENTS) tf.registerGradient(g);
}

/**
 * Runs the grad kernel once for all its input gradients. Eagerly, in gradFunc: the tape runs
 * each input's closure in its own tidy, which would free the gradients of the other inputs if
 * the first closure computed them all.
 */
function once(run: () => Tensor[]): (i: number) => Tensor {
  const outs = run();
  return (i) => outs[i];
}

const GRADIENTS: GradConfig[] = [
  {
    kernelName: 'PrmkitAttention',
    inputsToSave: ['q', 'k', 'v', 'mask'],
    outputsToSave: [true, true],
    gradFunc: (dy, saved) => {
      const [q, k, v, mask, out, lse] = saved;
      const dout = (dy as Tensor[])[0];
      const grads = once(() => tf.engine().runKernel('PrmkitAttentionGrad', { q, k, v, mask, out, lse, dout }) as Tensor[]);
      return { q: () => grads(0), k: () => grads(1), v: () => grads(2), mask: () => tf.zerosLike(mask) };
    },
  },
  {
    kernelName: 'PrmkitRopeAttention',
    inputsToSave: ['q', 'k', 'v', 'mask', 'cos', 'sin'],
    outputsToSave: [true, true],
    gradFunc: (dy, saved, attrs) => {
      const [q, k, v, mask, cos, sin, out, lse] = saved;
      const dout = (dy as Tensor[])[0];
      const grads = once(() => tf.engine().runKernel('PrmkitRopeAttentionGrad', { q, k, v, mask, cos, sin, out, lse, dout }, attrs) as Tensor[]);
      const none = (t: Tensor) => () => tf.zerosLike(t);
      return { q: () => grads(0), k: () => grads(1), v: () => grads(2), mask: none(mask), cos: none(cos), sin: none(sin) };
    },
  },
  {
    kernelName: 'PrmkitRopeAttentionRows',
    inputsToSave: ['q', 'k', 'v', 'mask', 'cos', 'sin', 'rows'],
    outputsToSave: [true, true],
    gradFunc: (dy, saved, attrs) => {
      const [q, k, v, mask, cos, sin, rows, out, lse] = saved;
      const dout = (dy as Tensor[])[0];
      const grads = once(() => tf.engine().runKernel('PrmkitRopeAttentionRowsGrad', { q, k, v, mask, cos, sin, rows, out, lse, dout }, attrs) as Tensor[]);
      const none = (t: Tensor) => () => tf.zerosLike(t);
      return { q: () => grads(0), k: () => grads(1), v: () => grads(2), mask: none(mask), cos: none(cos), sin: none(sin), rows: none(rows) };
    },
  },
  {
    kernelName: 'PrmkitRmsNorm',
    inputsToSave: ['x', 'w'],
    outputsToSave: [false, true],
    gradFunc: (dy, saved) => {
      const [x, w, rstd] = saved;
      const grads = once(() => tf.engine().runKernel('PrmkitRmsNormGrad', { dy: (dy as Tensor[])[0], x, w, rstd }) as Tensor[]);
      return { x: () => grads(0), w: () => grads(1) };
    },
  },
  {
    kernelName: 'PrmkitAddRmsNorm',
    inputsToSave: ['w'],
    outputsToSave: [true, false, true],
    gradFunc: (dy, saved) => {
      const [w, sum, rstd] = saved;
      const [dsum, dnormed] = dy as Tensor[];
      const grads = once(() => tf.engine().runKernel('PrmkitAddRmsNormGrad', { dsum, dy: dnormed, sum, w, rstd }) as Tensor[]);
      // x and r receive the same gradient; each gets its own tensor, since the tape may dispose one.
      return { x: () => grads(0), r: () => grads(0).clone(), w: () => grads(1) };
    },
  },
  {
    // The mask is drawn again from the key: the gradient is the same dropout of dy.
    kernelName: 'PrmkitDropout',
    inputsToSave: ['key'],
    gradFunc: (dy, saved, attrs) => {
      const [key] = saved;
      return { x: () => tf.engine().runKernel('PrmkitDropout', { x: dy as Tensor, key }, attrs) as Tensor, key: () => tf.zerosLike(key) };
    },
  },
  {
    kernelName: 'PrmkitSwiGlu',
    inputsToSave: ['gate', 'up'],
    gradFunc: (dy, saved) => {
      const [gate, up] = saved;
      const grads = once(() => tf.engine().runKernel('PrmkitSwiGluGrad', { dy: dy as Tensor, gate, up }) as Tensor[]);
      return { gate: () => grads(0), up: () => grads(1) };
    },
  },
];

function checkFloat(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'float32') throw new Error(`${op}: expected float32 tensors, got ${t.dtype}`);
}

export function fusedAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor2D): tf.Tensor4D {
  checkFloat('fusedAttention', q, k, v, mask);
  const [out, lse] = tf.engine().runKernel('PrmkitAttention', { q, k, v, mask }) as Tensor[];
  lse.dispose(); // the tape keeps its own copy for the gradient
  return out as tf.Tensor4D;
}

/**
 * fusedAttention of q and k before RoPE: the kernel rotates them (rotate_half form, with
 * cos, sin [B,T,D/2] of each token's position) and scales q by `scale`. It also takes the flat
 * layout q [B*T,H*D], k and v [B*T,Hk*D] (the projections as computed, the same memory) and then
 * returns [B*T,H*D]: no reshape op before and after each layer's attention.
 */
export function fusedRopeAttention<T extends tf.Tensor2D | tf.Tensor4D>(q: T, k: T, v: T, mask: tf.Tensor2D, cos: tf.Tensor3D, sin: tf.Tensor3D, scale: number): T {
  checkFloat('fusedRopeAttention', q, k, v, mask, cos, sin);
  const [out, lse] = tf.engine().runKernel('PrmkitRopeAttention', { q, k, v, mask, cos, sin }, { scale } as unknown as NamedAttrMap) as Tensor[];
  lse.dispose(); // the tape keeps its own copy for the gradient
  return out as T;
}

/**
 * fusedRopeAttention's output at chosen query positions only: q [N,H,D] holds the queries of
 * flat positions rows [N] (b*T + t, as float32: the kernel's inputs are all float), k and v
 * every position [B,T,Hk,D]; returns [N,H,D]. Or flat: q [N,H*D], k and v [B*T,Hk*D] -> [N,H*D].
 */
export function fusedRopeAttentionRows<Q extends tf.Tensor2D | tf.Tensor3D>(q: Q, k: tf.Tensor2D | tf.Tensor4D, v: tf.Tensor2D | tf.Tensor4D, mask: tf.Tensor2D, cos: tf.Tensor3D, sin: tf.Tensor3D, rows: tf.Tensor1D, scale: number): Q {
  checkFloat('fusedRopeAttentionRows', q, k, v, mask, cos, sin, rows);
  const [out, lse] = tf.engine().runKernel('PrmkitRopeAttentionRows', { q, k, v, mask, cos, sin, rows }, { scale } as unknown as NamedAttrMap) as Tensor[];
  lse.dispose(); // the tape keeps its own copy for the gradient
  return out as Q;
}

/** The attention's row log-sum-exp [B,H,T] too (tests). */
export function fusedAttentionWithLse(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor2D): [tf.Tensor4D, tf.Tensor3D] {
  checkFloat('fusedAttention', q, k, v, mask);
  return tf.engine().runKernel('PrmkitAttention', { q, k, v, mask }) as [tf.Tensor4D, tf.Tensor3D];
}

export function fusedRmsNorm(x: tf.Tensor2D, w: tf.Tensor1D, eps: number): tf.Tensor2D {
  checkFloat('fusedRmsNorm', x, w);
  const [y, rstd] = tf.engine().runKernel('PrmkitRmsNorm', { x, w }, { eps } as unknown as NamedAttrMap) as Tensor[];
  rstd.dispose(); // the tape keeps its own copy for the gradient
  return y as tf.Tensor2D;
}

/**
 * The residual add and RMSNorm in one kernel: returns [x + r, RMSNorm(x + r)]. Its backward adds
 * the gradient reaching the sum by the residual stream inside the kernel.
 */
export function fusedAddRmsNorm(x: tf.Tensor2D, r: tf.Tensor2D, w: tf.Tensor1D, eps: number): [tf.Tensor2D, tf.Tensor2D] {
  checkFloat('fusedAddRmsNorm', x, r, w);
  const [sum, y, rstd] = tf.engine().runKernel('PrmkitAddRmsNorm', { x, r, w }, { eps } as unknown as NamedAttrMap) as Tensor[];
  rstd.dispose(); // the tape keeps its own copy for the gradient
  return [sum as tf.Tensor2D, y as tf.Tensor2D];
}

const ADAMW_ATTRS = ['grad_scale', 'one_minus_b1', 'one_minus_b2', 'bc2', 'eps', 'decay_factor', 'neg_step'] as const;
export type FusedAdamWScalars = Record<(typeof ADAMW_ATTRS)[number], number>;

/**
 * One parameter's AdamW update in one kernel (the form of src/train/optimizer.ts): returns the
 * new parameter (the caller assigns it) and updates the moments m and v IN PLACE, as torch does,
 * so the step holds no second copy of them. m and v must own their buffers alone: no other
 * tensor (a clone, a reshape, the tensor a variable was made from) may share them, or it changes
 * too. AdamW's private moment variables satisfy this. No gradient.
 */
export function fusedAdamW(p: Tensor, m: tf.Variable, v: tf.Variable, g: Tensor, scalars: FusedAdamWScalars): Tensor {
  checkFloat('fusedAdamW', p, m, v, g);
  return tf.engine().runKernel('PrmkitAdamWInPlace', { p, m, v, g }, scalars as unknown as NamedAttrMap) as Tensor;
}

export function fusedSwiGlu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor2D {
  checkFloat('fusedSwiGlu', gate, up);
  return tf.engine().runKernel('PrmkitSwiGlu', { gate, up }) as tf.Tensor2D;
}

/**
 * Inverted dropout of x at `rate` in one kernel: each element kept (and divided by 1 - rate) or
 * zeroed by a hash of the seed and its flat position. The same seed and shape give the same mask,
 * forward, recomputed or in the gradient, whatever the thread count; nothing of the mask is kept
 * for the backward pass. The masks are not tf.dropout's (a different generator).
 */
export function fusedDropout<T extends tf.Tensor>(x: T, rate: number, seed: string): T {
  checkFloat('fusedDropout', x);
  if (!(rate >= 0 && rate < 1)) throw new Error(`fusedDropout: rate must be in [0, 1), got ${rate}`);
  const key = tf.tensor1d(dropoutKey(seed), 'float32');
  try {
    return tf.engine().runKernel('PrmkitDropout', { x, key }, { rate } as unknown as NamedAttrMap) as T;
  } finally {
    key.dispose(); // the tape keeps its own reference for the gradient
  }
}

/** A seed string as the kernel's key: its 64-bit FNV-1a hash in four 16-bit pieces (exact in float32). */
export function dropoutKey(seed: string): Float32Array {
  const h = hashString64(seed);
  return Float32Array.from([0, 1, 2, 3], (j) => Number((h >> BigInt(16 * j)) & 0xffffn));
}

/**
 * The sum of the squares of every element of every tensor, as a scalar, in one kernel call
 * (native backend with the fused kernels only; see fusedKernelsAvailability). Not differentiable.
 */
export function fusedSumOfSquares(tensors: readonly Tensor[]): tf.Scalar {
  if (tensors.length === 0) return tf.scalar(0);
  checkFloat('fusedSumOfSquares', ...tensors);
  const inputs: Record<string, Tensor> = {};
  tensors.forEach((t, i) => (inputs[`x${i}`] = t));
  return tf.engine().runKernel('PrmkitSumSquares', inputs) as tf.Scalar;
}

/**
 * Writes src's flat values [srcOffset, srcOffset + length) over dst's [dstOffset, ...) IN PLACE
 * (native backend with the fused kernels only; see fusedKernelsAvailability). dst must own its
 * buffer alone: a tensor the caller just created (tf.zeros), never a variable's value, a clone or
 * a reshape of another tensor, which would change too. Not differentiable.
 */
export function copyIntoInPlace(dst: Tensor, src: Tensor, dstOffset: number, srcOffset: number, length: number): void {
  checkFloat('copyIntoInPlace', dst, src);
  if (!fusedKernelsAvailability().ok) throw new Error('copyIntoInPlace needs the native backend with the fused kernels');
  for (const [name, v] of [['dstOffset', dstOffset], ['srcOffset', srcOffset], ['length', length]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`copyIntoInPlace: ${name} must be a non-negative integer, got ${v}`);
  }
  const native = tf.backend() as unknown as NativeBackend;
  const int = native.binding.TF_ATTR_INT;
  // No output and no gradient: the backend runs the op directly, outside the tfjs engine.
  native.executeMultipleOutputs(
    'PrmkitCopyIntoInPlace',
    [
      { name: 'dst_offset', type: int, value: dstOffset },
      { name: 'src_offset', type: int, value: srcOffset },
      { name: 'length', type: int, value: length },
    ],
    [dst, src],
    0,
  );
}
