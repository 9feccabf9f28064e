import * as tf from '@tensorflow/tfjs';
import { fusedAdamW } from '../backend/fused/fused-ops.js';
import { kernelInfo, type KernelChoice } from '../backend/fused/kernel-choice.js';
import { rowChunks } from '../model/tensor-chunks.js';

/**
 * AdamW with decoupled weight decay, written with tf ops on variables because tfjs ships only
 * Adam with L2-in-the-gradient (which is not the same thing). The update order and the bias
 * correction follow torch.optim.AdamW (amsgrad off, maximize off):
 *   p <- p * (1 - lr * wd)
 *   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * The moments are non-trainable tf.Variables; the step count is a plain number (it only feeds
 * the bias-correction scalars). Every temporary is disposed within the step, so nothing leaks.
 */
export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Parameter names matching any of these regular expressions get no weight decay. */
  noDecayPatterns: string[];
  /** Fused native update or tf ops; absent: the process-wide train.kernels (kernel-choice.ts). */
  kernels?: KernelChoice;
}

/** Biases and normalisation weights are conventionally not decayed (as in HF Trainer). */
export const DEFAULT_NO_DECAY_PATTERNS = ['\\.bias$', 'norm\\.weight$', '(^|\\.)norm$'];

export const DEFAULT_ADAMW: AdamWConfig = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  noDecayPatterns: DEFAULT_NO_DECAY_PATTERNS,
};

export interface NamedVariable {
  name: string;
  variable: tf.Variable;
}

/**
 * What AdamW updates: a tensor it reads and writes back. A whole parameter (a variable) in one
 * process; a flat slice of one in a sharded optimizer (zero.ts), whose updated values go to the
 * all-gather instead of a variable.
 */
export interface UpdateSlot {
  name: string;
  shape: readonly number[];
  /** The current values (AdamW does not dispose them). */
  read(): tf.Tensor;
  /** The updated values; the slot takes ownership. */
  write(value: tf.Tensor): void;
}

function variableSlot(p: NamedVariable): UpdateSlot {
  return { name: p.name, shape: p.variable.shape, read: () => p.variable, write: (value) => assignOwned(p.variable, value) };
}

/**
 * The optimizer state as a checkpoint stores it (optimizer.safetensors): entries `exp_avg.<param>`
 * and `exp_avg_sq.<param>` of the parameters' full shapes, whatever the worker count.
 */
export interface CheckpointableOptimizer {
  readonly step: number;
  stateSpecs(): { name: string; shape: number[] }[];
  /**
   * Host chunks of state entry i, in order. A sharded optimizer assembles the entry from every
   * worker: each worker calls this for every entry in the same order (collectively), and only
   * the writer reads the chunks (the others pass `write: false`).
   */
  stateChunks(i: number, chunkBytes: number, write?: boolean): AsyncIterable<Float32Array>;
}

/** Optimizer state as plain arrays, for a checkpoint file (names `exp_avg.<param>`, `exp_avg_sq.<param>`). */
export interface OptimizerState {
  step: number;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export class AdamW implements CheckpointableOptimizer {
  readonly config: AdamWConfig;
  readonly params: readonly UpdateSlot[];
  /** Number of updates taken so far (torch's `state['step']`). */
  step = 0;
  private readonly expAvg: tf.Variable[];
  private readonly expAvgSq: tf.Variable[];
  private readonly decayMask: boolean[];
  private readonly updateOrder: number[];

  /** AdamW over whole parameters (variables), or over slots (slices of parameters: zero.ts). */
  constructor(params: readonly NamedVariable[] | readonly UpdateSlot[], config: Partial<AdamWConfig> = {}) {
    this.config = { ...DEFAULT_ADAMW, ...config };
    const slots = params.map((p) => ('variable' in p ? variableSlot(p) : p));
    const names = new Set<string>();
    for (const p of slots) {
      if (names.has(p.name)) throw new Error(`AdamW: parameter ${p.name} given twice`);
      names.add(p.name);
    }
    this.params = slots;
    const patterns = this.config.noDecayPatterns.map((s) => new RegExp(s));
    this.decayMask = slots.map((p) => !patterns.some((re) => re.test(p.name)));
    const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
    this.updateOrder = slots.map((_, i) => i).sort((a, b) => size(slots[a].shape) - size(slots[b].shape) || a - b);
    this.expAvg = slots.map((p) => zerosVariable(p.shape));
    this.expAvgSq = slots.map((p) => zerosVariable(p.shape));
  }

  /** Whether weight decay applies to the named parameter. */
  decays(name: string): boolean {
    const i = this.params.findIndex((p) => p.name === name);
    if (i < 0) throw new Error(`AdamW: unknown parameter ${name}`);
    return this.decayMask[i];
  }

  /**
   * One update with learning rate `lr`. `grads` is aligned with `params` (same order) or keyed
   * by parameter name. `gradScale` multiplies every gradient first (global-norm clipping, as
   * torch's clip_grad_norm_ scales the gradients in place before the step). With `consume`, each
   * gradient is disposed as soon as its parameter is updated, so gradient memory shrinks while
   * the step runs; otherwise the caller keeps them.
   *
   * Memory: parameters are updated one at a time and every temporary is released before the next
   * one is made, so the step holds at most a few tensors of the largest parameter's size on top of
   * the weights, moments and gradients (torch's foreach AdamW holds one model-sized temporary).
   */
  apply(grads: readonly tf.Tensor[] | ReadonlyMap<string, tf.Tensor>, lr: number, opts: { gradScale?: number; consume?: boolean } = {}): void {
    const aligned = this.align(grads);
    this.step += 1;
    const { beta1, beta2, eps, weightDecay } = this.config;
    const biasCorrection1 = 1 - beta1 ** this.step;
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** this.step);
    const stepSize = lr / biasCorrection1;
    const gradScale = opts.gradScale ?? 1;
    const scalars = tf.tidy(() => ({
      gradScale: tf.scalar(gradScale),
      decayFactor: tf.scalar(1 - lr * weightDecay),
      b1: tf.scalar(beta1),
      oneMinusB1: tf.scalar(1 - beta1),
      b2: tf.scalar(beta2),
      oneMinusB2: tf.scalar(1 - beta2),
      bc2: tf.scalar(biasCorrection2Sqrt),
      eps: tf.scalar(eps),
      negStep: tf.scalar(-stepSize),
    }));
    // train.kernels: one fused kernel per parameter instead of about fourteen ops.
    const fused = kernelInfo(this.config.kernels).used === 'fused';
    const fusedScalars = {
      grad_scale: gradScale,
      one_minus_b1: 1 - beta1,
      one_minus_b2: 1 - beta2,
      bc2: biasCorrection2Sqrt,
      eps,
      neg_step: -stepSize,
    };
    try {
      // Smallest parameters first: with `consume`, the largest (the embedding) is updated when
      // every other gradient has been released, so its temporaries meet the least memory.
      for (const i of this.updateOrder) {
        if (fused) this.updateOneFused(i, aligned[i], { ...fusedScalars, decay_factor: this.decayMask[i] && weightDecay !== 0 ? 1 - lr * weightDecay : 1 });
        else this.updateOne(i, aligned[i], scalars, gradScale !== 1);
        if (opts.consume) aligned[i].dispose();
      }
    } finally {
      tf.dispose(Object.values(scalars));
    }
  }

  /**
   * The update of parameter i, in torch's single-tensor form (m.lerp_(g, 1 - b1); v.mul_(b2)
   * .addcmul_(g, g, 1 - b2) written as v + (g^2 - v)(1 - b2); p.addcdiv_(m, sqrt(v)/bc2 + eps,
   * -step)). tfjs has no in-place ops, so each op makes a new tensor: the chain below disposes
   * every intermediate as soon as the next exists, so at most two tensors of this parameter's
   * size exist beside p, m, v and g at any moment.
   */
  private updateOne(i: number, gradient: tf.Tensor, s: Record<'gradScale' | 'decayFactor' | 'b1' | 'oneMinusB1' | 'b2' | 'oneMinusB2' | 'bc2' | 'eps' | 'negStep', tf.Scalar>, scaled: boolean): void {
    const slot = this.params[i];
    const p = slot.read();
    const m = this.expAvg[i];
    const v = this.expAvgSq[i];
    const g = scaled ? tf.mul(gradient, s.gradScale) : gradient;
    try {
      assignOwned(m, chain(tf.sub(g, m), (d) => tf.mul(d, s.oneMinusB1), (d) => tf.add(m, d)));
      assignOwned(v, chain(tf.square(g), (sq) => tf.sub(sq, v), (d) => tf.mul(d, s.oneMinusB2), (d) => tf.add(v, d)));
    } finally {
      if (scaled) g.dispose();
    }
    const decayed = this.decayMask[i] && this.config.weightDecay !== 0 ? tf.mul(p, s.decayFactor) : p;
    const update = chain(tf.sqrt(v), (d) => tf.div(d, s.bc2), (d) => tf.add(d, s.eps), (d) => tf.div(m, d), (q) => tf.mul(q, s.negStep));
    const next = chain(update, (q) => tf.add(decayed, q));
    if (decayed !== p) decayed.dispose();
    slot.write(next);
  }

  /**
   * updateOne in one fused native kernel (the same operations in the same order). The moments
   * are updated in place (each is made by zerosVariable or assigned a fresh tensor by
   * importState, and never handed out but to be read), so the update holds one new tensor of the
   * parameter's size, not three.
   */
  private updateOneFused(i: number, gradient: tf.Tensor, scalars: Parameters<typeof fusedAdamW>[4]): void {
    this.params[i].write(fusedAdamW(this.params[i].read(), this.expAvg[i], this.expAvgSq[i], gradient, scalars));
  }

  /** The moment tensors of every parameter, named as in the checkpoint file (read them one at a time). */
  stateTensors(): { name: string; tensor: tf.Variable }[] {
    return this.params.flatMap((p, i) => [
      { name: `exp_avg.${p.name}`, tensor: this.expAvg[i] },
      { name: `exp_avg_sq.${p.name}`, tensor: this.expAvgSq[i] },
    ]);
  }

  stateSpecs(): { name: string; shape: number[] }[] {
    return this.stateTensors().map((s) => ({ name: s.name, shape: [...s.tensor.shape] }));
  }

  stateChunks(i: number, chunkBytes: number, write = true): AsyncIterable<Float32Array> {
    return write ? rowChunks(this.stateTensors()[i].tensor, chunkBytes) : (async function* () {})();
  }

  /** Sets the update count (restoring a checkpoint whose moments were loaded through stateTensors()). */
  setStep(step: number): void {
    if (!Number.isInteger(step) || step < 0) throw new Error(`AdamW: step must be a non-negative integer, got ${step}`);
    this.step = step;
  }

  exportState(): OptimizerState {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    this.params.forEach((p, i) => {
      tensors.set(`exp_avg.${p.name}`, { shape: [...p.shape], data: this.expAvg[i].dataSync() as Float32Array });
      tensors.set(`exp_avg_sq.${p.name}`, { shape: [...p.shape], data: this.expAvgSq[i].dataSync() as Float32Array });
    });
    return { step: this.step, tensors };
  }

  /** Restores moments and the step count; every parameter must be present with its shape. */
  importState(state: OptimizerState): void {
    const load = (key: string, target: tf.Variable) => {
      const entry = state.tensors.get(key);
      if (!entry) throw new Error(`optimizer state lacks ${key}`);
      const expected = target.shape.join('x');
      if (entry.shape.join('x') !== expected) {
        throw new Error(`optimizer state ${key} has shape [${entry.shape}], parameter has [${target.shape}]`);
      }
      tf.tidy(() => target.assign(tf.tensor(entry.data, target.shape, 'float32')));
    };
    this.params.forEach((p, i) => {
      load(`exp_avg.${p.name}`, this.expAvg[i]);
      load(`exp_avg_sq.${p.name}`, this.expAvgSq[i]);
    });
    this.step = state.step;
  }

  dispose(): void {
    for (const t of [...this.expAvg, ...this.expAvgSq]) t.dispose();
  }

  private align(grads: readonly tf.Tensor[] | ReadonlyMap<string, tf.Tensor>): tf.Tensor[] {
    const out = Array.isArray(grads)
      ? (grads as readonly tf.Tensor[]).slice()
      : this.params.map((p) => {
          const g = (grads as ReadonlyMap<string, tf.Tensor>).get(p.name);
          if (!g) throw new Error(`AdamW: no gradient for ${p.name}`);
          return g;
        });
    if (out.length !== this.params.length) {
      throw new Error(`AdamW: ${out.length} gradients for ${this.params.length} parameters`);
    }
    out.forEach((g, i) => {
      const shape = this.params[i].shape;
      if (g.shape.join('x') !== shape.join('x')) {
        throw new Error(`AdamW: gradient of ${this.params[i].name} has shape [${g.shape}], expected [${shape}]`);
      }
    });
    return out;
  }
}

/** Applies each step to the previous result, disposing that result as soon as the next one exists. */
function chain(first: tf.Tensor, ...steps: ((t: tf.Tensor) => tf.Tensor)[]): tf.Tensor {
  let current = first;
  for (const step of steps) {
    const next = step(current);
    current.dispose();
    current = next;
  }
  return current;
}

/** variable <- value, then drops the value's own handle (the variable keeps the data). */
function assignOwned(variable: tf.Variable, value: tf.Tensor): void {
  variable.assign(value);
  value.dispose();
}

function zerosVariable(shape: readonly number[]): tf.Variable {
  // The variable shares the buffer of the temporary; disposing the temporary keeps it alive.
  const zeros = tf.zeros([...shape]);
  const variable = tf.variable(zeros, false);
  zeros.dispose();
  return variable;
}
