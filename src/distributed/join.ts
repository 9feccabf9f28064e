/**
 * How a `prmkit run` process takes part in data-parallel training when TF_CONFIG names a
 * cluster of more than one training task:
 *
 *   rank 0    runs the whole recipe (data, labels, train, eval, report) and writes every file
 *             of the run; right before the train stage it tells the others whether training
 *             runs (a resumed run whose training finished, or a recipe without it, sends them home)
 *   rank > 0  waits for that word, then runs the train stage only: same data from the shared run
 *             directory, its share of every global batch, no files written, and exits
 *
 * The run directory must be shared by all workers (loopback workers share the disk; on a cluster
 * use a shared volume): rank 0's labelled data, checkpoints and final model are read from it.
 */
import * as tf from '@tensorflow/tfjs';
import type { ParallelRole } from '../train/trainer.js';
import { CollectiveGroup, type CollectiveOptions } from './collective.js';
import { parallelRole, syncVariablesFromRank0 } from './data-parallel.js';
import { clusterFromEnv, type ClusterConfig } from './tf-config.js';

export interface DataParallel {
  rank: number;
  worldSize: number;
  group: CollectiveGroup;
  /** What trainModel takes as `parallel`. */
  role: ParallelRole;
  /** Rank 0's weights into every worker's variables (before training: identical starting points). */
  syncWeights(variables: Iterable<tf.Variable>): Promise<void>;
  /** Rank 0: whether the train stage runs. Others: waits for rank 0 to say so (no time limit; a dead rank 0 is still caught). */
  trainingStarts(willTrain: boolean): Promise<boolean>;
  close(): void;
}

/** The cluster of TF_CONFIG when it has more than one training task (else null: one process trains alone). */
export function trainingCluster(env: NodeJS.ProcessEnv = process.env): ClusterConfig | null {
  const cluster = clusterFromEnv(env);
  return cluster && cluster.worldSize > 1 ? cluster : null;
}

/**
 * Joins the cluster: enables TensorFlow's collective ops on the native backend and waits for
 * every worker. Call right after the backend is selected, before the first tensor exists.
 */
export async function joinCluster(cluster: ClusterConfig, opts: CollectiveOptions = {}): Promise<DataParallel> {
  const group = await CollectiveGroup.start(cluster, opts);
  return {
    rank: group.rank,
    worldSize: group.worldSize,
    group,
    role: parallelRole(group),
    syncWeights: (variables) => syncVariablesFromRank0(group, [...variables]),
    trainingStarts: async (willTrain) => {
      const [go] = await group.valuesFromRank0('training starts', [willTrain ? 1 : 0], 0);
      return go === 1;
    },
    close: () => group.close(),
  };
}
