import * as tf from '@tensorflow/tfjs';

/**
 * AdamW with decoupled weight decay, written with tf ops on variables because tfjs ships only
 * Adam with L2-in-the-gradient (which is not the same thing). The update order and the bias
 * correction follow torch.optim.AdamW (amsgrad off, maximize off):
 *   p <- p * (1 - lr * wd)
 *   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * The moments are non-trainable tf.Variables; the step count is a plain number (it only feeds
 * the bias-correction scalars). Every step runs inside tf.tidy, so nothing leaks per step.
 */
export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Parameter names matching any of these regular expressions get no weight decay. */
  noDecayPatterns: string[];
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

/** Optimizer state as plain arrays, for a checkpoint file (names `exp_avg.<param>`, `exp_avg_sq.<param>`). */
export interface OptimizerState {
  step: number;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export class AdamW {
  readonly config: AdamWConfig;
  readonly params: readonly NamedVariable[];
  /** Number of updates taken so far (torch's `state['step']`). */
  step = 0;
  private readonly expAvg: tf.Variable[];
  private readonly expAvgSq: tf.Variable[];
  private readonly decayMask: boolean[];

  constructor(params: readonly NamedVariable[], config: Partial<AdamWConfig> = {}) {
    this.config = { ...DEFAULT_ADAMW, ...config };
    const names = new Set<string>();
    for (const p of params) {
      if (names.has(p.name)) throw new Error(`AdamW: parameter ${p.name} given twice`);
      names.add(p.name);
    }
    this.params = params;
    const patterns = this.config.noDecayPatterns.map((s) => new RegExp(s));
    this.decayMask = params.map((p) => !patterns.some((re) => re.test(p.name)));
    this.expAvg = params.map((p) => zerosVariable(p.variable));
    this.expAvgSq = params.map((p) => zerosVariable(p.variable));
  }

  /** Whether weight decay applies to the named parameter. */
  decays(name: string): boolean {
    const i = this.params.findIndex((p) => p.name === name);
    if (i < 0) throw new Error(`AdamW: unknown parameter ${name}`);
    return this.decayMask[i];
  }

  /**
   * One update with learning rate `lr`. `grads` is aligned with `params` (same order) or keyed
   * by parameter name. The gradients are not disposed here.
   */
  apply(grads: readonly tf.Tensor[] | ReadonlyMap<string, tf.Tensor>, lr: number): void {
    const aligned = this.align(grads);
    this.step += 1;
    const { beta1, beta2, eps, weightDecay } = this.config;
    const biasCorrection1 = 1 - beta1 ** this.step;
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** this.step);
    const stepSize = lr / biasCorrection1;
    tf.tidy(() => {
      const decayFactor = tf.scalar(1 - lr * weightDecay);
      const b1 = tf.scalar(beta1);
      const oneMinusB1 = tf.scalar(1 - beta1);
      const b2 = tf.scalar(beta2);
      const oneMinusB2 = tf.scalar(1 - beta2);
      const bc2 = tf.scalar(biasCorrection2Sqrt);
      const epsT = tf.scalar(eps);
      const negStep = tf.scalar(-stepSize);
      for (let i = 0; i < this.params.length; i++) {
        const p = this.params[i].variable;
        const g = aligned[i];
        const m = this.expAvg[i];
        const v = this.expAvgSq[i];
        const decayed = this.decayMask[i] && weightDecay !== 0 ? tf.mul(p, decayFactor) : p;
        const mNew = tf.add(tf.mul(m, b1), tf.mul(g, oneMinusB1));
        const vNew = tf.add(tf.mul(v, b2), tf.mul(tf.mul(g, g), oneMinusB2));
        const denom = tf.add(tf.div(tf.sqrt(vNew), bc2), epsT);
        const pNew = tf.add(decayed, tf.mul(tf.div(mNew, denom), negStep));
        m.assign(mNew);
        v.assign(vNew);
        p.assign(pNew);
      }
    });
  }

  exportState(): OptimizerState {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    this.params.forEach((p, i) => {
      tensors.set(`exp_avg.${p.name}`, { shape: [...p.variable.shape], data: this.expAvg[i].dataSync() as Float32Array });
      tensors.set(`exp_avg_sq.${p.name}`, { shape: [...p.variable.shape], data: this.expAvgSq[i].dataSync() as Float32Array });
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
      const shape = this.params[i].variable.shape;
      if (g.shape.join('x') !== shape.join('x')) {
        throw new Error(`AdamW: gradient of ${this.params[i].name} has shape [${g.shape}], expected [${shape}]`);
      }
    });
    return out;
  }
}

function zerosVariable(like: tf.Tensor): tf.Variable {
  // The variable shares the buffer of the temporary; disposing the temporary keeps it alive.
  const zeros = tf.zerosLike(like);
  const variable = tf.variable(zeros, false);
  zeros.dispose();
  return variable;
}
