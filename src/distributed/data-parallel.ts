/**
 * The trainer's view of a collective group (src/train/trainer.ts ParallelRole): which rows of
 * each global micro-batch this worker computes, the cross-worker gradient sum, and barriers.
 *
 * Weighting: each micro-batch loss is divided by the weight of the whole global accumulation
 * group (every worker computes that weight from the global batch it also builds), so the sum of
 * the workers' gradients is the single-process gradient of the same global batch; clipping and
 * AdamW then run on identical sums in every worker, which keeps the weights identical.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradientReducer } from '../train/step.js';
import type { ParallelRole } from '../train/trainer.js';
import type { CollectiveGroup } from './collective.js';
import { shardRows } from './shard.js';

/**
 * Sums gradients and the loss over the workers in one pass of flat buckets (the loss rides as
 * one extra element of the last bucket). Takes ownership of `grads`.
 */
export function gradientReducer(group: CollectiveGroup): GradientReducer {
  return async (grads, losses) => {
    const lossTensor = tf.tensor1d(losses, 'float32');
    try {
      const reduced = await group.allReduceSum([...grads, lossTensor], 'gradient all-reduce', { consume: true });
      const lossSums = reduced.pop() as tf.Tensor;
      const totals = Array.from(await lossSums.data());
      lossSums.dispose();
      return { grads: reduced, losses: totals };
    } finally {
      // Freed bucket by bucket by the reduction; this covers a failure before it started.
      tf.dispose([...grads, lossTensor].filter((t) => !t.isDisposed));
    }
  };
}

/** The trainer's final barrier (trainModel calls barrier('final') after publishing the model). */
const FINAL_BARRIER = 'final';

export function parallelRole(group: CollectiveGroup): ParallelRole {
  return {
    rank: group.rank,
    worldSize: group.worldSize,
    shard: (indices) => shardRows(indices, group.rank, group.worldSize),
    reduce: gradientReducer(group),
    collectives: group,
    // Training is the group's last collective work: past the final barrier the other workers
    // exit, so the health checks stop there instead of reporting them as failed.
    barrier: (label) => (label === FINAL_BARRIER ? group.finish(label) : group.barrier(label)),
  };
}

/** Every worker takes rank 0's values of `variables` (identical starting weights whatever each worker computed). */
export async function syncVariablesFromRank0(group: CollectiveGroup, variables: readonly tf.Variable[]): Promise<void> {
  const received = await group.broadcastFromRank0(variables, 'initial weights');
  variables.forEach((v, i) => v.assign(received[i]));
  tf.dispose(received);
}
