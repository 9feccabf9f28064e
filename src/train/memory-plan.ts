import type { Qwen2Config } from '../model/config.js';

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
 */
export const ACT_PER_HIDDEN = 148;
export const ACT_PER_MLP = 14;
export const ACT_PER_SCORE = 26;
export const BACKWARD_FACTOR = 2;
/**
 * [tokens, vocabulary] float tensors alive at once for the auxiliary LM loss (train.lm_loss_weight):
 * the logits, their softmax and its product with the upstream gradient in the backward pass, and
 * one more the engine holds there. Measured with tf.profile's peak bytes (test/train/lm-loss.test.ts,
 * 4.04; the one-hot form it replaced peaked at 11).
 */
export const LM_LOSS_VOCAB_TENSORS = 4;

export interface BatchShape {
  rows: number;
  tokens: number;
}

export interface MemoryPlanOptions {
  recompute: boolean;
  /** Parameters trained (all by default). */
  trainableParameters?: number;
  /** Largest trainable tensor (the embedding by default). */
  largestTrainable?: number;
  attentionBlockSize?: number;
  /** The auxiliary LM loss is on (train.lm_loss_weight > 0). */
  lmLoss?: boolean;
}

export interface MemoryPlan {
  parameters: number;
  trainable_parameters: number;
  batch: BatchShape;
  recompute: boolean;
  bytes: {
    weights: number;
    gradients: number;
    optimizer_moments: number;
    optimizer_transient: number;
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
export function layerActivationBytes(cfg: Qwen2Config, batch: BatchShape, blockSize = 256): number {
  const n = batch.rows * batch.tokens;
  return n * (ACT_PER_HIDDEN * cfg.hiddenSize + ACT_PER_MLP * cfg.intermediateSize) + ACT_PER_SCORE * scoreElements(cfg, batch, blockSize);
}

export function planMemory(cfg: Qwen2Config, batch: BatchShape, opts: MemoryPlanOptions): MemoryPlan {
  const counts = parameterCount(cfg);
  const trainable = opts.trainableParameters ?? counts.total;
  const largest = opts.largestTrainable ?? Math.max(counts.embedding, cfg.intermediateSize * cfg.hiddenSize);
  const layer = layerActivationBytes(cfg, batch, opts.attentionBlockSize ?? 256);
  const n = batch.rows * batch.tokens;
  const lmTerm = opts.lmLoss ? LM_LOSS_VOCAB_TENSORS * 4 * n * cfg.vocabSize : 0;
  const activations =
    lmTerm +
    (opts.recompute ? cfg.numHiddenLayers * n * cfg.hiddenSize * 4 + BACKWARD_FACTOR * layer : BACKWARD_FACTOR * cfg.numHiddenLayers * layer);
  const bytes = {
    weights: 4 * counts.total,
    gradients: 4 * trainable,
    optimizer_moments: 8 * trainable,
    optimizer_transient: trainable > 0 ? 2 * 4 * largest : 0,
    activations,
    total: 0,
  };
  // The optimizer's transient and the activations are not alive at the same time.
  bytes.total = bytes.weights + bytes.gradients + bytes.optimizer_moments + Math.max(bytes.optimizer_transient, bytes.activations);
  return { parameters: counts.total, trainable_parameters: trainable, batch, recompute: opts.recompute, bytes };
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
  return [
    `memory plan: ${count(plan.parameters)} parameters (${count(plan.trainable_parameters)} trained), micro-batch [${plan.batch.rows}, ${plan.batch.tokens}], ${plan.recompute ? 'activation recomputation' : 'no recomputation'}`,
    row('weights', b.weights),
    row('gradients', b.gradients),
    row('AdamW moments', b.optimizer_moments),
    row('activations', b.activations),
    row('optimizer transient', b.optimizer_transient),
    row('expected peak', b.total),
  ].join('\n');
}
