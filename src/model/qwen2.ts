import * as tf from '@tensorflow/tfjs';
import { fusedAddRmsNorm, fusedRmsNorm, fusedRopeAttention, fusedRopeAttentionRows, fusedSwiGlu } from '../backend/fused/fused-ops.js';
import { checkKernelChoice, kernelInfo, type KernelChoice } from '../backend/fused/kernel-choice.js';
import type { Qwen2Config } from './config.js';
import { linear, type LowRankAdapter } from './linear.js';
import type { LoraTarget } from './lora.js';

/**
 * The Qwen2 decoder forward pass (embedding, N x [RMSNorm -> GQA attention with RoPE ->
 * residual, RMSNorm -> SwiGLU MLP -> residual], final RMSNorm), written with tfjs ops only so
 * that it is differentiable and runs on every backend.
 *
 * Layout choices, made for speed on the wasm and cpu backends:
 * - Linear weights are held as [in, out] (HF stores [out, in]). The wasm backend only takes
 *   its XNNPACK path for a plain `matMul(x, W)`; with `transposeB` it is ~10x slower. The
 *   conversion happens once at load and save time.
 * - Activations stay 2-D [B*T, hidden] between layers; attention works on
 *   [B*kvHeads, groups*T, headDim] so grouped-query attention needs no copy of k/v per head.
 * - Long sequences are attended in causal query blocks (see attentionBlockSize).
 * - RoPE uses the "swap halves" form: rotate_half(x)*sin == swap(halves of x)*[-sin, sin], so
 *   no negation per layer (split + concat measured 3-4x faster than tf.reverse on wasm); the
 *   1/sqrt(d) attention scale is folded into the query's cos/sin factors.
 * - On the native backend, attention (with RoPE), RMSNorm and SwiGLU run as prmkit's fused
 *   kernels by default (DecoderOptions.kernels, train.kernels; src/backend/fused); the tfjs
 *   ops here are the path of the other backends and the reference those kernels are tested against.
 */

export type ParamKind = 'embedding' | 'linear' | 'bias' | 'norm';

export interface ParamSpec {
  /** HF parameter name. */
  name: string;
  /** Shape as HF stores it ([out, in] for linear weights). */
  hfShape: number[];
  kind: ParamKind;
}

/** Linear weights are stored transposed ([in, out]) in tfjs variables; see the file comment. */
export function internalShape(spec: ParamSpec): number[] {
  return spec.kind === 'linear' ? [spec.hfShape[1], spec.hfShape[0]] : [...spec.hfShape];
}

export function layerPrefix(i: number): string {
  return `model.layers.${i}`;
}

/**
 * One row per tensor of a decoder layer: the field the forward pass reads, the HF name suffix
 * under `model.layers.<i>.`, the HF shape and the kind (which decides the stored layout and
 * whether weight decay applies). Both the parameter list and the weight lookup come from this
 * table, so a new tensor (Qwen3's q_norm, say) is one row.
 */
const LAYER_TENSORS = [
  { field: 'inputNorm', suffix: 'input_layernorm.weight', kind: 'norm', shape: (c: Dims) => [c.h] },
  { field: 'qW', suffix: 'self_attn.q_proj.weight', kind: 'linear', shape: (c: Dims) => [c.qOut, c.h] },
  { field: 'qB', suffix: 'self_attn.q_proj.bias', kind: 'bias', shape: (c: Dims) => [c.qOut] },
  { field: 'kW', suffix: 'self_attn.k_proj.weight', kind: 'linear', shape: (c: Dims) => [c.kvOut, c.h] },
  { field: 'kB', suffix: 'self_attn.k_proj.bias', kind: 'bias', shape: (c: Dims) => [c.kvOut] },
  { field: 'vW', suffix: 'self_attn.v_proj.weight', kind: 'linear', shape: (c: Dims) => [c.kvOut, c.h] },
  { field: 'vB', suffix: 'self_attn.v_proj.bias', kind: 'bias', shape: (c: Dims) => [c.kvOut] },
  { field: 'oW', suffix: 'self_attn.o_proj.weight', kind: 'linear', shape: (c: Dims) => [c.h, c.qOut] },
  { field: 'postNorm', suffix: 'post_attention_layernorm.weight', kind: 'norm', shape: (c: Dims) => [c.h] },
  { field: 'gateW', suffix: 'mlp.gate_proj.weight', kind: 'linear', shape: (c: Dims) => [c.inter, c.h] },
  { field: 'upW', suffix: 'mlp.up_proj.weight', kind: 'linear', shape: (c: Dims) => [c.inter, c.h] },
  { field: 'downW', suffix: 'mlp.down_proj.weight', kind: 'linear', shape: (c: Dims) => [c.h, c.inter] },
] as const satisfies readonly { field: string; suffix: string; kind: ParamKind; shape: (c: Dims) => number[] }[];

interface Dims {
  h: number;
  qOut: number;
  kvOut: number;
  inter: number;
}

function dims(cfg: Qwen2Config): Dims {
  return { h: cfg.hiddenSize, qOut: cfg.numAttentionHeads * cfg.headDim, kvOut: cfg.numKeyValueHeads * cfg.headDim, inter: cfg.intermediateSize };
}

const EMBED = 'model.embed_tokens.weight';
const FINAL_NORM = 'model.norm.weight';

/** The backbone parameters in canonical order, named as in HF `Qwen2Model` under `model.`. */
export function decoderParamSpecs(cfg: Qwen2Config): ParamSpec[] {
  const d = dims(cfg);
  const specs: ParamSpec[] = [{ name: EMBED, hfShape: [cfg.vocabSize, d.h], kind: 'embedding' }];
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    for (const t of LAYER_TENSORS) specs.push({ name: `${layerPrefix(i)}.${t.suffix}`, hfShape: t.shape(d), kind: t.kind });
  }
  specs.push({ name: FINAL_NORM, hfShape: [d.h], kind: 'norm' });
  return specs;
}

/** The names of layer i's tensors (for freezing and per-layer gradients). */
export function layerParamNames(i: number): string[] {
  return LAYER_TENSORS.map((t) => `${layerPrefix(i)}.${t.suffix}`);
}

export type DecoderLayerWeights = { [K in (typeof LAYER_TENSORS)[number]['field']]: K extends 'inputNorm' | 'postNorm' | 'qB' | 'kB' | 'vB' ? tf.Tensor1D : tf.Tensor2D } & {
  /** LoRA adapters of the layer's projections, by PEFT target name (src/model/lora.ts). */
  adapters?: Partial<Record<LoraTarget, LowRankAdapter>>;
};

export interface DecoderWeights {
  embed: tf.Tensor2D;
  layers: DecoderLayerWeights[];
  norm: tf.Tensor1D;
}

/** Picks the decoder's tensors out of a name -> tensor map (internal layout). */
export function decoderWeightsFrom(cfg: Qwen2Config, byName: ReadonlyMap<string, tf.Tensor>): DecoderWeights {
  const get = <T extends tf.Tensor>(name: string): T => {
    const t = byName.get(name);
    if (!t) throw new Error(`decoder weight "${name}" is missing`);
    return t as T;
  };
  const layers: DecoderLayerWeights[] = [];
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const layer: Record<string, tf.Tensor> = {};
    for (const t of LAYER_TENSORS) layer[t.field] = get(`${layerPrefix(i)}.${t.suffix}`);
    layers.push(layer as unknown as DecoderLayerWeights);
  }
  return { embed: get(EMBED), layers, norm: get(FINAL_NORM) };
}

/**
 * Inverse rotary frequencies in f32 arithmetic step by step as transformers computes them
 * (exponent, power and reciprocal each rounded to f32), so long positions match too.
 */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround((2 * i) / headDim);
    inv[i] = Math.fround(1 / Math.fround(Math.pow(theta, exponent)));
  }
  return inv;
}

interface RopeFactors {
  /** [B*T, 1, 2, D/2] each; the q factors carry the 1/sqrt(D) attention scale. */
  cosQ: tf.Tensor4D;
  sinQ: tf.Tensor4D;
  cosK: tf.Tensor4D;
  sinK: tf.Tensor4D;
}

/**
 * Positions come from the attention mask (cumulative count of real tokens - 1), so a sequence
 * gets the same positions whether it is padded on the left or on the right.
 */
/** Rotary angles [B*T, D/2] of each token's position. */
function ropeAngles(cfg: Qwen2Config, mask: tf.Tensor2D): tf.Tensor2D {
  const [b, t] = mask.shape;
  const half = cfg.headDim / 2;
  const positions = tf.relu(tf.sub(tf.cumsum(mask, 1), 1)).reshape([b * t, 1]);
  return tf.mul(positions, tf.tensor2d(ropeInverseFrequencies(cfg.headDim, cfg.ropeTheta), [1, half]));
}

function ropeFactors(cfg: Qwen2Config, mask: tf.Tensor2D): RopeFactors {
  const [b, t] = mask.shape;
  const half = cfg.headDim / 2;
  const angles = ropeAngles(cfg, mask);
  const cos = tf.cos(angles);
  const sin = tf.sin(angles);
  const cosFull = tf.stack([cos, cos], 1).reshape([b * t, 1, 2, half]) as tf.Tensor4D;
  const sinSigned = tf.stack([tf.neg(sin), sin], 1).reshape([b * t, 1, 2, half]) as tf.Tensor4D;
  const scale = 1 / Math.sqrt(cfg.headDim);
  return { cosQ: tf.mul(cosFull, scale), sinQ: tf.mul(sinSigned, scale), cosK: cosFull, sinK: sinSigned };
}

/** x: [N, heads*D] -> RoPE applied, as [N, heads, 2, D/2]. */
function applyRope(x: tf.Tensor, heads: number, half: number, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const x4 = x.reshape([x.shape[0], heads, 2, half]) as tf.Tensor4D;
  const [first, second] = tf.split(x4, 2, 2);
  return tf.add(tf.mul(x4, cos), tf.mul(tf.concat([second, first], 2), sin));
}

/**
 * Options of the forward pass. attentionBlockSize: queries per attention block. A causal query
 * block [s, e) only needs keys [0, e), so long sequences are attended block by block: the score,
 * bias and softmax work (quadratic in the length, and what dominates scoring whole responses)
 * shrinks towards half, and so does the peak memory. Sequences up to one block take the plain path.
 */
export interface DecoderOptions {
  attentionBlockSize: number;
  /**
   * 'fused': attention, RMSNorm and SwiGLU run as prmkit's fused native kernels
   * (src/backend/fused) when the backend has them, else as the eager ops below; 'eager': always
   * the eager ops, the reference the fused kernels are tested against. Absent: the process-wide
   * choice (train.kernels; src/backend/fused/kernel-choice.ts).
   */
  kernels?: KernelChoice;
}

export const DEFAULT_DECODER_OPTIONS: Readonly<DecoderOptions> = { attentionBlockSize: 256 };

export function checkDecoderOptions(opts: DecoderOptions): DecoderOptions {
  const size = opts.attentionBlockSize;
  if (!Number.isInteger(size) || size < 1) throw new Error(`attention block size must be a positive integer, got ${size}`);
  if (opts.kernels !== undefined) checkKernelChoice(opts.kernels);
  return opts;
}

/** Whether a forward pass with these options runs the fused kernels on the backend in use. */
export function usesFusedKernels(opts: DecoderOptions): boolean {
  return kernelInfo(opts.kernels).used === 'fused';
}

/** One query block of causal attention: rows [start, end) attend to keys [0, end). */
interface AttentionBlock {
  start: number;
  end: number;
  /** Additive bias [B, 1, end - start, end]: 0 where query i may see key j (j <= i, j real), -1e9 elsewhere. */
  bias: tf.Tensor4D;
}

function attentionBlocks(mask: tf.Tensor2D, blockSize: number): AttentionBlock[] {
  const [b, t] = mask.shape;
  const blocks: AttentionBlock[] = [];
  for (let start = 0; start < t; start += blockSize) {
    const end = Math.min(t, start + blockSize);
    const rows = end - start;
    // Built on the host: a broadcast lessEqual of two index ranges costs milliseconds on wasm.
    const lower = new Float32Array(rows * end);
    for (let i = 0; i < rows; i++) lower.fill(1, i * end, i * end + start + i + 1);
    const bias = tf.tidy(() => {
      const keys = end === t ? mask : mask.slice([0, 0], [b, end]);
      const allowed = tf.mul(tf.tensor4d(lower, [1, 1, rows, end]), keys.reshape([b, 1, 1, end]));
      // A finite bias (not -inf) keeps fully padded query rows finite, so NaN never reaches a gradient.
      return tf.mul(tf.sub(allowed, 1), 1e9) as tf.Tensor4D;
    });
    blocks.push({ start, end, bias });
  }
  return blocks;
}

export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number, fused = false): tf.Tensor2D {
  if (fused) return fusedRmsNorm(x, weight, eps);
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight);
}

/** Attention context [B*T, heads*D] (before o_proj) through the fused kernel: RoPE, scale, masks and GQA all inside it. */
function fusedAttentionContext(cfg: Qwen2Config, w: DecoderLayerWeights, x: tf.Tensor2D, f: FusedInputs): tf.Tensor2D {
  const d = cfg.headDim;
  // [B*T, heads*D] is [B, T, heads, D] in memory: the kernel reads the projections as they are
  // (B and T from the mask, D from cos), with no reshape op on either side.
  const q = linear(x, w.qW, w.qB, w.adapters?.q_proj, true);
  const k = linear(x, w.kW, w.kB, w.adapters?.k_proj, true);
  const v = linear(x, w.vW, w.vB, w.adapters?.v_proj, true);
  return fusedRopeAttention(q, k, v, f.mask, f.cos, f.sin, 1 / Math.sqrt(d));
}

/**
 * fusedAttentionContext at the flat positions `rows` only [N, heads*D]: queries of those rows,
 * keys and values of every position.
 */
function fusedAttentionContextAt(cfg: Qwen2Config, w: DecoderLayerWeights, x: tf.Tensor2D, f: FusedInputs, rows: tf.Tensor1D): tf.Tensor2D {
  const d = cfg.headDim;
  const q = linear(tf.gather(x, rows) as tf.Tensor2D, w.qW, w.qB, w.adapters?.q_proj, true);
  const k = linear(x, w.kW, w.kB, w.adapters?.k_proj, true);
  const v = linear(x, w.vW, w.vB, w.adapters?.v_proj, true);
  return fusedRopeAttentionRows(q, k, v, f.mask, f.cos, f.sin, tf.cast(rows, 'float32'), 1 / Math.sqrt(d));
}

/** Attention context [B*T, heads*D] (before o_proj) by the eager ops, block by block. */
function attentionContext(
  cfg: Qwen2Config,
  w: DecoderLayerWeights,
  x: tf.Tensor2D,
  batch: number,
  seqLen: number,
  rope: RopeFactors,
  blocks: AttentionBlock[],
): tf.Tensor2D {
  const nH = cfg.numAttentionHeads;
  const nKv = cfg.numKeyValueHeads;
  const groups = nH / nKv;
  const d = cfg.headDim;
  const half = d / 2;
  const q = applyRope(linear(x, w.qW, w.qB, w.adapters?.q_proj), nH, half, rope.cosQ, rope.sinQ);
  const k = applyRope(linear(x, w.kW, w.kB, w.adapters?.k_proj), nKv, half, rope.cosK, rope.sinK);
  const v = linear(x, w.vW, w.vB, w.adapters?.v_proj);
  // Keys are transposed here once so the score product is a plain matMul.
  const kT = tf.transpose(k.reshape([batch, seqLen, nKv, d]), [0, 2, 3, 1]).reshape([batch * nKv, d, seqLen]) as tf.Tensor3D;
  const v3 = tf.transpose(v.reshape([batch, seqLen, nKv, d]), [0, 2, 1, 3]).reshape([batch * nKv, seqLen, d]) as tf.Tensor3D;
  const q4 = q.reshape([batch, seqLen, nH, d]);
  // Per block: context rows [start, end) as [B, rows, nH*D].
  // One tidy per block and per layer (below): without a gradient tape this frees each block's
  // scores as soon as its context is computed (peak memory of one block, not of all layers);
  // under a tape, the tensors the backward pass needs are kept by the tape anyway.
  const contexts = blocks.map(({ start, end, bias }) => tf.tidy(() => {
    const rows = end - start;
    const qBlock = blocks.length === 1 ? q4 : q4.slice([0, start, 0, 0], [batch, rows, nH, d]);
    // Query heads are ordered kv-major (head h uses kv head floor(h / groups), as HF repeat_kv),
    // so [B, nH, rows, D] is [B*nKv, groups*rows, D] without a copy.
    const q3 = tf.transpose(qBlock, [0, 2, 1, 3]).reshape([batch * nKv, groups * rows, d]) as tf.Tensor3D;
    const keys = end === seqLen ? kT : kT.slice([0, 0, 0], [batch * nKv, d, end]);
    const values = end === seqLen ? v3 : v3.slice([0, 0, 0], [batch * nKv, end, d]);
    const scores = tf.matMul(q3, keys).reshape([batch, nH, rows, end]);
    const probs = tf.softmax(tf.add(scores, bias)).reshape([batch * nKv, groups * rows, end]) as tf.Tensor3D;
    const context = tf.matMul(probs, values).reshape([batch, nH, rows, d]);
    return tf.transpose(context, [0, 2, 1, 3]).reshape([batch, rows, nH * d]);
  }));
  return (contexts.length === 1 ? contexts[0] : tf.concat(contexts, 1)).reshape([batch * seqLen, nH * d]) as tf.Tensor2D;
}

/**
 * silu(gate) * up with a hand-written gradient: autodiff through sigmoid and two products
 * makes eight passes over the [tokens, intermediate] activations; this one makes five
 * (d up = dy * silu(gate); d gate = dy * up * (s + silu(gate) * (1 - s)), s = sigmoid(gate)).
 */
export const swiGlu = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [gate, up, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  const s = tf.sigmoid(gate);
  const silu = tf.mul(gate, s);
  save([s, silu, up]);
  return {
    value: tf.mul(silu, up),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sig, siluSaved, upSaved] = saved;
      const dUp = tf.mul(dy, siluSaved);
      const dGate = tf.mul(tf.mul(dy, upSaved), tf.add(sig, tf.mul(siluSaved, tf.sub(1, sig))));
      return [dGate, dUp];
    },
  };
}) as (gate: tf.Tensor, up: tf.Tensor) => tf.Tensor2D;

function mlp(w: DecoderLayerWeights, x: tf.Tensor2D, fused: boolean): tf.Tensor2D {
  const gate = linear(x, w.gateW, undefined, w.adapters?.gate_proj, fused);
  const up = linear(x, w.upW, undefined, w.adapters?.up_proj, fused);
  return linear(fused ? fusedSwiGlu(gate, up) : swiGlu(gate, up), w.downW, undefined, w.adapters?.down_proj, fused);
}

/**
 * What every layer of one forward pass shares: the shape, the RoPE factors and the attention
 * blocks (masks). Built once per batch; the caller disposes it (disposeDecoderContext).
 */
/** What the fused kernels read: the float mask [B, T] and RoPE's cos and sin [B, T, D/2]. */
interface FusedInputs {
  mask: tf.Tensor2D;
  cos: tf.Tensor3D;
  sin: tf.Tensor3D;
}

/** The eager path's RoPE factors and attention blocks (with their masks). */
interface EagerInputs {
  rope: RopeFactors;
  blocks: AttentionBlock[];
}

export interface DecoderContext {
  batch: number;
  seqLen: number;
  /** Exactly one of the two is set: the forward runs the fused kernels or the eager ops. */
  fused: FusedInputs | null;
  eager: EagerInputs | null;
}

export function decoderContext(cfg: Qwen2Config, attentionMask: tf.Tensor2D, opts: DecoderOptions = DEFAULT_DECODER_OPTIONS): DecoderContext {
  const [batch, seqLen] = attentionMask.shape;
  if (usesFusedKernels(opts)) {
    const fused = tf.tidy(() => {
      // The context owns its mask: a copy even when the caller's is float32 already.
      const mask = (attentionMask.dtype === 'float32' ? attentionMask.clone() : tf.cast(attentionMask, 'float32')) as tf.Tensor2D;
      const angles = ropeAngles(cfg, mask);
      const shape: [number, number, number] = [batch, seqLen, cfg.headDim / 2];
      return { mask, cos: tf.cos(angles).reshape(shape), sin: tf.sin(angles).reshape(shape) };
    }) as FusedInputs;
    return { batch, seqLen, fused, eager: null };
  }
  const mask = attentionMask.dtype === 'float32' ? attentionMask : tf.cast(attentionMask, 'float32');
  try {
    const rope = tf.tidy(() => ropeFactors(cfg, mask as tf.Tensor2D) as unknown as tf.TensorContainer) as unknown as RopeFactors;
    const blocks = attentionBlocks(mask as tf.Tensor2D, opts.attentionBlockSize);
    return { batch, seqLen, fused: null, eager: { rope, blocks } };
  } finally {
    if (mask !== attentionMask) mask.dispose();
  }
}

export function disposeDecoderContext(ctx: DecoderContext): void {
  if (ctx.fused) tf.dispose([ctx.fused.mask, ctx.fused.cos, ctx.fused.sin]);
  if (ctx.eager) {
    const { rope, blocks } = ctx.eager;
    tf.dispose([rope.cosQ, rope.sinQ, rope.cosK, rope.sinK, ...blocks.map((b) => b.bias)]);
  }
}

/** Token embeddings [B*T, hidden] of ids [B, T]. */
export function embedTokens(w: DecoderWeights, inputIds: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const ids = inputIds.dtype === 'int32' ? inputIds : tf.cast(inputIds, 'int32');
    return tf.gather(w.embed, ids.reshape([inputIds.size])) as tf.Tensor2D;
  });
}

/**
 * One decoder layer: h + attention(norm(h)), then + mlp(norm(.)). [B*T, hidden] in; out the same,
 * or with `rows` (flat indices b*T + t) only those rows' outputs [rows, hidden].
 *
 * Why rows: a PRM reads the last layer's output at its step tokens only. Every position still
 * needs its keys and values there, but the queries, o_proj, the residual and the MLP (about 7/8
 * of a layer's work) of a row nobody reads need not be computed. The rows' values are those of
 * the full layer. (The eager path computes the attention of every query, then picks the rows.)
 */
export function decoderLayer(cfg: Qwen2Config, layer: DecoderLayerWeights, h: tf.Tensor2D, ctx: DecoderContext, rows?: tf.Tensor1D): tf.Tensor2D {
  const fused = ctx.fused !== null;
  return tf.tidy(() => {
    const normed = rmsNorm(h, layer.inputNorm, cfg.rmsNormEps, fused);
    let context: tf.Tensor2D;
    if (ctx.fused) {
      // The fused kernel computes the chosen rows' queries alone; the eager ops all, then pick.
      context = rows
        ? fusedAttentionContextAt(cfg, layer, normed, ctx.fused, rows)
        : fusedAttentionContext(cfg, layer, normed, ctx.fused);
    } else {
      const all = attentionContext(cfg, layer, normed, ctx.batch, ctx.seqLen, ctx.eager!.rope, ctx.eager!.blocks);
      context = rows ? (tf.gather(all, rows) as tf.Tensor2D) : all;
    }
    const attended = linear(context, layer.oW, undefined, layer.adapters?.o_proj, fused);
    const residual = rows ? (tf.gather(h, rows) as tf.Tensor2D) : h;
    const [mid, normedMid] = fused
      ? fusedAddRmsNorm(residual, attended, layer.postNorm, cfg.rmsNormEps)
      : addThenNorm(residual, attended, layer.postNorm, cfg.rmsNormEps);
    return tf.add(mid, mlp(layer, normedMid, fused)) as tf.Tensor2D;
  });
}

/** x + r and its RMSNorm by the eager ops (fusedAddRmsNorm's reference). */
function addThenNorm(x: tf.Tensor2D, r: tf.Tensor2D, weight: tf.Tensor1D, eps: number): [tf.Tensor2D, tf.Tensor2D] {
  const sum = tf.add(x, r) as tf.Tensor2D;
  return [sum, rmsNorm(sum, weight, eps)];
}

/** The final RMSNorm of the decoder. */
export function finalNorm(cfg: Qwen2Config, w: DecoderWeights, h: tf.Tensor2D, fused = false): tf.Tensor2D {
  return rmsNorm(h, w.norm, cfg.rmsNormEps, fused);
}

function checkMask(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): void {
  const [batch, seqLen] = inputIds.shape;
  if (attentionMask.shape[0] !== batch || attentionMask.shape[1] !== seqLen) {
    throw new Error(`attention mask shape [${attentionMask.shape}] does not match input ids [${inputIds.shape}]`);
  }
}

/**
 * Final hidden states [B*T, hidden] (after the last RMSNorm) for token ids [B, T] and an
 * attention mask [B, T] (1 = token, 0 = padding; int32 or float). Values at padded positions
 * are finite but meaningless. With `rows` (flat indices b*T + t), those rows only
 * [rows, hidden], the last layer computing no other (see decoderLayer).
 */
export function decoderHiddenStates(
  cfg: Qwen2Config,
  w: DecoderWeights,
  inputIds: tf.Tensor2D,
  attentionMask: tf.Tensor2D,
  opts: DecoderOptions = DEFAULT_DECODER_OPTIONS,
  rows?: tf.Tensor1D,
): tf.Tensor2D {
  checkMask(inputIds, attentionMask);
  return tf.tidy(() => {
    const ctx = decoderContext(cfg, attentionMask, opts);
    let h = embedTokens(w, inputIds);
    w.layers.forEach((layer, i) => (h = decoderLayer(cfg, layer, h, ctx, i === w.layers.length - 1 ? rows : undefined)));
    if (w.layers.length === 0 && rows) h = tf.gather(h, rows) as tf.Tensor2D;
    return finalNorm(cfg, w, h, ctx.fused !== null);
  });
}
