import type { Qwen2Config } from '../model/config.js';
import { bucketBytesFromEnv } from '../distributed/bucket.js';
import { LORA_TARGETS, type LoraTarget } from '../model/lora-targets.js';

/**
 * The memory a training run needs, from the model config and the batch settings, before anything
 * is loaded (`prmkit plan`, `prmkit run --dry-run`). fp32 throughout, as prmkit computes.
 *
 * Static: weights (4 bytes a parameter), gradients and the two AdamW moments of the trainable
 * parameters (4 + 8 bytes each), and the optimizer's transient: two tensors of the largest
 * trainable parameter (src/train/optimizer.ts updates one parameter at a time).
 *
 * Activations of the largest micro-batch (B rows of T tokens, N = B*T), per decoder layer:
 * ACT_PER_HIDDEN bytes per token and hidden unit, ACT_PER_MLP per token and MLP unit,
 * ACT_PER_SCORE per attention score (queries are attended in blocks of `attentionBlockSize`, so
 * a block of rows sees keys up to its end), for what the forward pass keeps; the backward pass
 * holds about as much again in gradients of those tensors until it ends (BACKWARD_FACTOR). The
 * constants are fitted to the peak memory of one backward pass of Qwen2.5-0.5B-shaped layers at
 * [2, 256], [1, 512] and [2, 512] (scripts/bench/calibrate-memory-plan.ts, wasm heap growth: within 10%).
 * With recomputation, only each layer's input is kept (4 bytes per token and hidden unit) plus
 * one layer's activations and their gradients while that layer runs backward.
 *
 * With the fused native kernels (train.kernels: fused on the native backend) a layer keeps no
 * attention score: the fused attention saves its output and one log-sum-exp per query row. Its
 * per-token cost, ACT_PER_HIDDEN_FUSED beside the same ACT_PER_MLP, is fitted to the peak RSS of
 * one backward pass of 4 and 8 Qwen2.5-0.5B-shaped layers at [2, 256], [2, 512] and [1, 2048]
 * (calibrate-memory-plan.ts --kernels fused: within 12%). The fused AdamW updates the moments
 * in place: one new tensor of the largest parameter in flight (its new value), not two.
 */
export const ACT_PER_HIDDEN = 148;
export const ACT_PER_MLP = 14;
export const ACT_PER_SCORE = 26;
export const BACKWARD_FACTOR = 2;
export const ACT_PER_HIDDEN_FUSED = 24;
/**
 * [tokens, vocabulary] float tensors alive at once for the auxiliary LM loss (train.lm_loss_weight):
 * the logits, their softmax and its product with the upstream gradient in the backward pass, and
 * one more the engine holds there. Measured with tf.profile's peak bytes (test/train/lm-loss.test.ts,
 * 4.04; the one-hot form it replaced peaked at 11).
 */
export const LM_LOSS_VOCAB_TENSORS = 4;

/**
 * Optimizer-state sharding across data-parallel workers (ZeRO stages 1 and 2): `states` keeps
 * each rank's 1/N of the AdamW moments; `states+gradients` also reduce-scatters gradients as the
 * backward pass produces them, so a rank holds its 1/N of the summed gradient plus the gradient
 * being scattered (one layer's, or the embedding's).
 */
export const SHARD_OPTIMIZER_MODES = ['none', 'states', 'states+gradients'] as const;
export type ShardOptimizer = (typeof SHARD_OPTIMIZER_MODES)[number];


/** What the plan needs of a LoRA config (model.lora). */
export interface LoraPlan {
  r: number;
  dropout: number;
  targetModules: readonly LoraTarget[];
}

export interface BatchShape {
  rows: number;
  tokens: number;
}

/** Which decoder kernels the plan is for (train.kernels as the backend will run it). */
export type PlanKernels = 'fused' | 'eager';

export interface MemoryPlanOptions {
  recompute: boolean;
  /** Fused native kernels (no attention scores, moments updated in place) or eager tfjs ops (the default). */
  kernels?: PlanKernels;
  /** Parameters trained (all by default). */
  trainableParameters?: number;
  /** Largest trainable tensor (the embedding by default). */
  largestTrainable?: number;
  attentionBlockSize?: number;
  /** The auxiliary LM loss is on (train.lm_loss_weight > 0). */
  lmLoss?: boolean;
  /** Data-parallel workers (1 by default); each computes ceil(rows / workers) rows of a micro-batch. */
  workers?: number;
  shardOptimizer?: ShardOptimizer;
  /** Bytes of one all-reduce bucket (default: PRMKIT_COLLECTIVE_BUCKET_MB or 64 MiB, as the collectives use). */
  bucketBytes?: number;
  /** A LoRA adapter over the frozen base: trained = adapter + head unless trainableParameters says otherwise. */
  lora?: LoraPlan;
}

export interface MemoryPlan {
  parameters: number;
  trainable_parameters: number;
  /** The micro-batch of the whole group; each worker computes rows_per_worker of its rows. */
  batch: BatchShape;
  recompute: boolean;
  kernels: PlanKernels;
  workers: number;
  shard_optimizer: ShardOptimizer;
  rows_per_worker: number;
  lora: { r: number; targets: string[]; parameters: number } | null;
  /** Per worker (rank). */
  bytes: {
    weights: number;
    gradients: number;
    optimizer_moments: number;
    optimizer_transient: number;
    /** Buckets of the gradient reduction in flight (0 in one process). */
    collective_transient: number;
    activations: number;
    total: number;
  };
}

/** Every parameter of the PRM (decoder + head). */
export function parameterCount(cfg: Qwen2Config): { total: number; embedding: number; perLayer: number; head: number } {
  const h = cfg.hiddenSize;
  const q = cfg.numAttentionHeads * cfg.headDim;
  const kv = cfg.numKeyValueHeads * cfg.headDim;
  const perLayer = 2 * h + (h * q + q) + 2 * (h * kv + kv) + q * h + 3 * h * cfg.intermediateSize;
  const embedding = cfg.vocabSize * h;
  const head = h * h + h + cfg.numLabels * h + cfg.numLabels;
  return { total: embedding + cfg.numHiddenLayers * perLayer + h + head, embedding, perLayer, head };
}

/** In and out widths of a LoRA target projection. */
function targetWidths(cfg: Qwen2Config, target: LoraTarget): [number, number] {
  const h = cfg.hiddenSize;
  const q = cfg.numAttentionHeads * cfg.headDim;
  const kv = cfg.numKeyValueHeads * cfg.headDim;
  const widths: Record<LoraTarget, [number, number]> = {
    q_proj: [h, q],
    k_proj: [h, kv],
    v_proj: [h, kv],
    o_proj: [q, h],
    gate_proj: [h, cfg.intermediateSize],
    up_proj: [h, cfg.intermediateSize],
    down_proj: [cfg.intermediateSize, h],
  };
  return widths[target];
}

/** Parameters of a LoRA adapter: r x (in + out) per target projection and layer. */
export function loraParameterCount(cfg: Qwen2Config, lora: LoraPlan): { total: number; largest: number } {
  let perLayer = 0;
  let largest = 0;
  for (const t of LORA_TARGETS.filter((x) => lora.targetModules.includes(x))) {
    const [i, o] = targetWidths(cfg, t);
    perLayer += lora.r * (i + o);
    largest = Math.max(largest, lora.r * i, lora.r * o);
  }
  return { total: cfg.numHiddenLayers * perLayer, largest };
}

/**
 * What a LoRA adapter adds to one layer's kept forward tensors, per target projection: the two
 * [N, r] products (x A and its scaled copy), the [N, out] product with B and the sum with the base
 * projection, and with dropout the dropped input [N, in]. The eager paths also keep the mask
 * ([N, in] more); the fused kernel draws the mask again in the backward pass. Checked against the
 * peak RSS of LoRA r=16 on every projection at 0.5B size, [2, 512], recomputation, fused kernels
 * (docs/lora-and-sharding.md): the eager-path term was never fitted at that size.
 */
export function loraLayerActivationBytes(cfg: Qwen2Config, batch: BatchShape, lora: LoraPlan, kernels: PlanKernels = 'eager'): number {
  const n = batch.rows * batch.tokens;
  const inputCopies = lora.dropout > 0 ? (kernels === 'fused' ? 1 : 2) : 0;
  let bytes = 0;
  for (const t of LORA_TARGETS.filter((x) => lora.targetModules.includes(x))) {
    const [i, o] = targetWidths(cfg, t);
    bytes += 4 * n * (2 * lora.r + 2 * o + inputCopies * i);
  }
  return bytes;
}

/** Attention score elements of one layer for a batch, with queries in blocks. */
function scoreElements(cfg: Qwen2Config, batch: BatchShape, blockSize: number): number {
  let perRow = 0;
  for (let start = 0; start < batch.tokens; start += blockSize) {
    const end = Math.min(batch.tokens, start + blockSize);
    perRow += (end - start) * end;
  }
  return batch.rows * cfg.numAttentionHeads * perRow;
}

/** Forward activations prmkit keeps for one decoder layer's backward pass. */
export function layerActivationBytes(cfg: Qwen2Config, batch: BatchShape, blockSize = 256, kernels: PlanKernels = 'eager'): number {
  const n = batch.rows * batch.tokens;
  if (kernels === 'fused') return n * (ACT_PER_HIDDEN_FUSED * cfg.hiddenSize + ACT_PER_MLP * cfg.intermediateSize);
  return n * (ACT_PER_HIDDEN * cfg.hiddenSize + ACT_PER_MLP * cfg.intermediateSize) + ACT_PER_SCORE * scoreElements(cfg, batch, blockSize);
}

export function planMemory(cfg: Qwen2Config, fullBatch: BatchShape, opts: MemoryPlanOptions): MemoryPlan {
  const counts = parameterCount(cfg);
  const workers = opts.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
  const shard = opts.shardOptimizer ?? 'none';
  const adapter = opts.lora ? loraParameterCount(cfg, opts.lora) : null;
  const parameters = counts.total + (adapter?.total ?? 0);
  const trainable = opts.trainableParameters ?? (adapter ? adapter.total + counts.head : counts.total);
  const largest = opts.largestTrainable ?? (adapter ? Math.max(adapter.largest, cfg.hiddenSize * cfg.hiddenSize) : Math.max(counts.embedding, cfg.intermediateSize * cfg.hiddenSize));
  // Each worker computes its share of the rows of every micro-batch (src/distributed/shard.ts).
  const rowsPerWorker = Math.ceil(fullBatch.rows / workers);
  const batch = { rows: rowsPerWorker, tokens: fullBatch.tokens };
  const kernels = opts.kernels ?? 'eager';
  const layer = layerActivationBytes(cfg, batch, opts.attentionBlockSize ?? 256, kernels) + (opts.lora ? loraLayerActivationBytes(cfg, batch, opts.lora, kernels) : 0);
  const n = batch.rows * batch.tokens;
  const lmTerm = opts.lmLoss ? LM_LOSS_VOCAB_TENSORS * 4 * n * cfg.vocabSize : 0;
  const activations =
    lmTerm +
    (opts.recompute ? cfg.numHiddenLayers * n * cfg.hiddenSize * 4 + BACKWARD_FACTOR * layer : BACKWARD_FACTOR * cfg.numHiddenLayers * layer);
  const sharded = shard !== 'none' && workers > 1;
  // A rank's flat slice of the parameters (src/train/zero.ts).
  const slice = Math.ceil(trainable / workers);
  // Stage 2 scatters each gradient as it arrives: a rank holds its slice of the sum plus the
  // largest gradient in flight (kept until its last bucket has gone out).
  const gradients = shard === 'states+gradients' && workers > 1 ? 4 * slice + 4 * largest : 4 * trainable;
  const moments = sharded ? 8 * slice : 8 * trainable;
  // The reduction cuts the gradients into flat buckets (through tensors) and returns a summed
  // copy: two buckets in flight. Unsharded, a tensor cut by bucket edges is rebuilt from its
  // summed pieces once the last arrives: its pieces and the whole, one more of the largest.
  const bucket = opts.bucketBytes ?? bucketBytesFromEnv();
  const collective = workers > 1 && trainable > 0 ? 2 * bucket + (sharded ? 0 : 4 * largest) : 0;
  // Sharded, the update's own temporaries are smaller than the all-gather after it: the updated
  // slice, and the largest tensor being assembled: with the fused kernels in one buffer written in
  // place, else as its pieces plus their concatenation. Unsharded: two tensors of the largest
  // parameter for the eager update, one (the new parameter) for the fused one, which updates the
  // moments in place.
  const transientTensors = kernels === 'fused' ? 1 : 2;
  const optimizerTransient = trainable > 0 ? (sharded ? 4 * (slice + transientTensors * largest) : transientTensors * 4 * largest) : 0;
  const bytes = {
    weights: 4 * parameters,
    gradients,
    optimizer_moments: moments,
    optimizer_transient: optimizerTransient,
    collective_transient: collective,
    activations,
    total: 0,
  };
  // The optimizer's transient, the reduction's buckets and the activations are not alive at the
  // same time. Sharded, the update consumes the gradient slice before the all-gather, so the
  // gradients and the all-gather are not alive together either.
  bytes.total = sharded
    ? bytes.weights + bytes.optimizer_moments + Math.max(bytes.gradients + Math.max(bytes.collective_transient, bytes.activations), bytes.optimizer_transient)
    : bytes.weights + bytes.gradients + bytes.optimizer_moments + Math.max(bytes.optimizer_transient, bytes.collective_transient, bytes.activations);
  return {
    parameters,
    trainable_parameters: trainable,
    batch: fullBatch,
    recompute: opts.recompute,
    kernels,
    workers,
    shard_optimizer: shard,
    rows_per_worker: rowsPerWorker,
    lora: opts.lora && adapter ? { r: opts.lora.r, targets: [...opts.lora.targetModules], parameters: adapter.total } : null,
    bytes,
  };
}

const GB = 1e9;

function count(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e3).toFixed(1)}K`;
}

/** The plan as a small table (GB), for the terminal and the README. */
export function formatMemoryPlan(plan: MemoryPlan): string {
  const b = plan.bytes;
  const row = (name: string, v: number) => `  ${name.padEnd(22)} ${(v / GB).toFixed(2).padStart(8)} GB`;
  const trained = plan.lora ? `LoRA r=${plan.lora.r} on ${plan.lora.targets.join(',')} + head: ${count(plan.trainable_parameters)} trained` : `${count(plan.trainable_parameters)} trained`;
  const parallel = plan.workers > 1 ? `, ${plan.workers} workers (${plan.rows_per_worker} row(s) each), optimizer sharding ${plan.shard_optimizer}, per worker:` : '';
  return [
    `memory plan: ${count(plan.parameters)} parameters (${trained}), micro-batch [${plan.batch.rows}, ${plan.batch.tokens}], ${plan.recompute ? 'activation recomputation' : 'no recomputation'}, ${plan.kernels === 'fused' ? 'fused kernels (no T x T attention scores)' : 'eager ops (attention scores kept)'}${parallel}`,
    row('weights', b.weights),
    row('gradients', b.gradients),
    row('AdamW moments', b.optimizer_moments),
    row('activations', b.activations),
    row('optimizer transient', b.optimizer_transient),
    ...(plan.workers > 1 ? [row('reduction buckets', b.collective_transient)] : []),
    row('expected peak', b.total),
    // Measured on CPU workers over loopback gRPC (docs/lora-and-sharding.md): the plan counts
    // tensors; TensorFlow's default CPU allocator keeps freed blocks on top of them.
    ...(plan.workers > 1
      ? ['  (CPU workers: add the process, 0.3-0.45 GB; TensorFlow\'s default CPU allocator kept 2.3-3.0 GB more at 0.5B size, see docs/lora-and-sharding.md)']
      : []),
  ].join('\n');
}
