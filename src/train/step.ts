import * as tf from '@tensorflow/tfjs';
import { clipCoefficient, globalNorm, GradientAccumulator } from './gradients.js';
import type { AdamW, NamedVariable } from './optimizer.js';
import { chainGradientParts, chainGradients, type ForwardChain } from './recompute.js';
import { ShardedAdamW } from './zero.js';

/**
 * The one training step, shared by PRM training, causal-LM pretraining and the benchmarks:
 * forward and backward per micro-batch (on one tape, or stage by stage with activation
 * recomputation), gradients summed over the accumulation group, an optional cross-worker
 * reduction, the global norm, a finite check, then AdamW with the clipping factor folded in.
 * With a ShardedAdamW (train.shard_optimizer) the reduction is a reduce-scatter, the norm and the
 * update cover this worker's slice, and the new weights are all-gathered (zero.ts).
 * Schedules, evaluation, checkpoints and logging stay with the loops that call it.
 */

/** One micro-batch's loss, already divided by the weight of its whole accumulation group. */
export interface MicroBatch {
  /** Tokens in the micro-batch (for throughput). */
  tokens: number;
  /** The loss under one gradient tape (tensors it creates are freed by the step). */
  loss(): tf.Scalar;
  /** The same loss as a chain of stages, for activation recomputation; dispose() frees what the chain holds. */
  chain(): { chain: ForwardChain; dispose(): void };
  /**
   * Named parts of the loss just computed (the auxiliary LM term), in the loss's own scale, read
   * once after the gradients; absent when the loss has a single part.
   */
  takeLossParts?(): Record<string, number>;
  /**
   * Runs the micro-batch's forward and backward passes in its training context (LoRA dropout
   * masks drawn from the micro-batch's seed, also when a stage is recomputed); absent: as they are.
   */
  inTraining?<T>(fn: () => T): T;
  /** Frees the micro-batch's own tensors (ids, masks). */
  dispose(): void;
}

/**
 * Sums gradients and loss values (the loss, then its named parts) over data-parallel workers.
 * Takes ownership of `grads` and returns the reduced gradients, aligned with them, and the
 * summed values in the same order. Absent in a single process.
 */
export type GradientReducer = (grads: tf.Tensor[], losses: number[]) => Promise<{ grads: tf.Tensor[]; losses: number[] }>;

export interface StepConfig {
  /** Global-norm clipping threshold; 0 disables clipping. */
  maxGradNorm: number;
  /** Recompute each stage's activations in the backward pass instead of keeping them. */
  recompute: boolean;
}

export interface StepResult {
  /** Sum of the micro-batch losses (the group's loss). */
  loss: number;
  /** The group's sums of the named loss parts the micro-batches report (empty when none do). */
  lossParts: Record<string, number>;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  tokens: number;
  /** False when the loss or the gradient norm was not finite: no update was made. */
  applied: boolean;
  /** Seconds spent in cross-worker collectives (0 in one process). */
  collectiveSeconds: number;
}

export interface StepOptions {
  /**
   * Micro-batches of the global step (every worker's), when this worker computes fewer (a
   * micro-batch with no rows of its own): with sharded gradients each worker takes part in
   * one reduction per global micro-batch. Default: the micro-batches given.
   */
  globalMicroBatches?: number;
}

export class TrainStep {
  private readonly variables: tf.Variable[];

  constructor(
    readonly params: readonly NamedVariable[],
    readonly optimizer: AdamW | ShardedAdamW,
    readonly config: StepConfig,
    readonly reduce?: GradientReducer,
  ) {
    this.variables = params.map((p) => p.variable);
  }

  /** Gradients of one micro-batch, aligned with params; the caller owns them. */
  gradients(micro: MicroBatch): { value: tf.Scalar; grads: tf.Tensor[] } {
    return micro.inTraining ? micro.inTraining(() => this.gradientsNow(micro)) : this.gradientsNow(micro);
  }

  private gradientsNow(micro: MicroBatch): { value: tf.Scalar; grads: tf.Tensor[] } {
    if (this.config.recompute) {
      const { chain, dispose } = micro.chain();
      try {
        return chainGradients(chain, this.variables);
      } finally {
        dispose();
      }
    }
    const { value, grads } = tf.variableGrads(() => micro.loss(), this.variables);
    return {
      value,
      grads: this.params.map((p) => {
        const g = grads[p.variable.name];
        if (!g) throw new Error(`no gradient reaches ${p.name}`);
        return g;
      }),
    };
  }

  /**
   * One optimizer step over the micro-batches of an accumulation group, at learning rate lr.
   * `lossPartNames` names the parts of the loss to sum beside it; the caller names them, not the
   * micro-batches, because a data-parallel worker whose share is empty must still reduce them.
   */
  async run(micro: readonly MicroBatch[], lr: number, lossPartNames: readonly string[] = [], opts: StepOptions = {}): Promise<StepResult> {
    if (this.optimizer instanceof ShardedAdamW) return this.runSharded(this.optimizer, micro, lr, lossPartNames, opts.globalMicroBatches ?? micro.length);
    const accumulator = new GradientAccumulator();
    try {
      const local = await this.backward(micro, lossPartNames, async (m) => {
        const { value, grads } = this.gradients(m);
        accumulator.add(grads);
        return value;
      });
      let { loss, lossParts } = local;
      const { tokens } = local;
      // A data-parallel worker whose share of this step is empty still takes part in the reduction.
      let summed = accumulator.microBatches > 0 ? accumulator.take() : this.variables.map((v) => tf.zerosLike(v));
      let collectiveSeconds = 0;
      if (this.reduce) {
        const t0 = performance.now();
        const reduced = await this.reduce(summed, [loss, ...lossPartNames.map((n) => lossParts[n])]);
        collectiveSeconds = (performance.now() - t0) / 1000;
        summed = reduced.grads;
        loss = reduced.losses[0];
        lossParts = Object.fromEntries(lossPartNames.map((n, i) => [n, reduced.losses[i + 1]]));
      }
      const gradNorm = globalNorm(summed);
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        tf.dispose(summed);
        return { loss, lossParts, gradNorm, tokens, applied: false, collectiveSeconds };
      }
      this.optimizer.apply(summed, lr, { gradScale: clipCoefficient(gradNorm, this.config.maxGradNorm), consume: true });
      return { loss, lossParts, gradNorm, tokens, applied: true, collectiveSeconds };
    } finally {
      accumulator.reset();
    }
  }

  /**
   * The backward pass of every micro-batch (`backwardOne` takes its gradients and returns its
   * loss), each micro-batch freed after; this worker's loss, loss parts and tokens.
   */
  private async backward(
    micro: readonly MicroBatch[],
    lossPartNames: readonly string[],
    backwardOne: (m: MicroBatch) => Promise<tf.Scalar>,
  ): Promise<{ loss: number; lossParts: Record<string, number>; tokens: number }> {
    let loss = 0;
    const lossParts: Record<string, number> = Object.fromEntries(lossPartNames.map((n) => [n, 0]));
    let tokens = 0;
    for (const m of micro) {
      try {
        const value = await backwardOne(m);
        loss += (await value.data())[0];
        value.dispose();
        const parts = m.takeLossParts?.() ?? {};
        for (const name of lossPartNames) lossParts[name] += parts[name] ?? 0;
      } finally {
        m.dispose();
      }
      tokens += m.tokens;
    }
    return { loss, lossParts, tokens };
  }

  /**
   * run() with the optimizer state sharded over the workers. Stage 1 accumulates the group's
   * gradients as run() does and reduce-scatters the sum; stage 2 reduce-scatters every
   * micro-batch's gradients as its backward pass finishes them (gradientParts).
   */
  private async runSharded(zero: ShardedAdamW, micro: readonly MicroBatch[], lr: number, lossPartNames: readonly string[], globalMicroBatches: number): Promise<StepResult> {
    const accumulator = new GradientAccumulator();
    try {
      const { loss, lossParts, tokens } = await this.backward(micro, lossPartNames, async (m) => {
        if (zero.stage === 2) return this.streamGradients(m, zero);
        const { value, grads } = this.gradients(m);
        accumulator.add(grads);
        return value;
      });
      if (zero.stage === 1) {
        if (accumulator.microBatches > 0) await zero.putAllGradients(accumulator.take());
        else await zero.putZeros();
      } else {
        for (let k = micro.length; k < globalMicroBatches; k++) await zero.putZeros();
      }
      const reduced = await zero.reduceNorm([loss, ...lossPartNames.map((n) => lossParts[n])]);
      const summedLoss = reduced.losses[0];
      const summedParts = Object.fromEntries(lossPartNames.map((n, i) => [n, reduced.losses[i + 1]]));
      const gradNorm = reduced.norm;
      if (!Number.isFinite(summedLoss) || !Number.isFinite(gradNorm)) {
        zero.discardGradients();
        return { loss: summedLoss, lossParts: summedParts, gradNorm, tokens, applied: false, collectiveSeconds: zero.takeCollectiveSeconds() };
      }
      await zero.apply(lr, clipCoefficient(gradNorm, this.config.maxGradNorm));
      return { loss: summedLoss, lossParts: summedParts, gradNorm, tokens, applied: true, collectiveSeconds: zero.takeCollectiveSeconds() };
    } catch (err) {
      zero.discardGradients();
      throw err;
    } finally {
      accumulator.reset();
    }
  }

  /**
   * One micro-batch's backward pass, its gradients handed to the sharded optimizer as they
   * become final: stage by stage with recomputation, all at once without. Returns the loss.
   */
  private async streamGradients(micro: MicroBatch, zero: ShardedAdamW): Promise<tf.Scalar> {
    if (!this.config.recompute) {
      const { value, grads } = this.gradients(micro);
      try {
        await zero.putAllGradients(grads);
      } catch (err) {
        value.dispose();
        throw err;
      }
      return value;
    }
    // Each resumption of the backward pass runs in the micro-batch's training context (LoRA
    // dropout masks), as gradients() runs the whole of it.
    const inContext = <T>(fn: () => T): T => (micro.inTraining ? micro.inTraining(fn) : fn());
    const { chain, dispose } = inContext(() => micro.chain());
    const parts = chainGradientParts(chain, this.variables);
    try {
      for (let r = inContext(() => parts.next()); ; r = inContext(() => parts.next())) {
        if (r.done) return r.value;
        await zero.putGradients(r.value.indices, r.value.grads);
      }
    } finally {
      inContext(() => parts.return(undefined as unknown as tf.Scalar));
      dispose();
    }
  }
}
