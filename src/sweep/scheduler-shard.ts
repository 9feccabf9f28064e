/**
 * `--shard auto[/n]`: the shard of this process from its scheduler's environment, so one job
 * script serves every task of a Slurm job array or a Kubernetes Indexed Job.
 *
 *   Slurm (sbatch --array=A-B[:S])  SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_STEP
 *                                   and SLURM_ARRAY_TASK_COUNT: index (ID - MIN) / STEP of COUNT, so
 *                                   --array=1-4 and --array=0-3 both give shards 0..3
 *   Kubernetes Indexed Job          JOB_COMPLETION_INDEX (0..completions-1); Kubernetes does not
 *                                   export the number of completions, so write it: --shard auto/N
 *
 * With /n after auto, n must agree with what Slurm says.
 */
export interface SchedulerShard {
  index: number;
  count: number;
  /** Where the shard came from, for logs and the shard record. */
  from: string;
}

export class SchedulerShardError extends Error {
  override name = 'SchedulerShardError';
}

function integerVar(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new SchedulerShardError(`--shard auto: ${name}=${raw} is not a non-negative integer`);
  return Number(raw);
}

export function shardFromScheduler(env: NodeJS.ProcessEnv, count?: number): SchedulerShard {
  const slurmId = integerVar(env, 'SLURM_ARRAY_TASK_ID');
  const k8sIndex = integerVar(env, 'JOB_COMPLETION_INDEX');
  if (slurmId !== undefined && k8sIndex !== undefined) {
    throw new SchedulerShardError('--shard auto: both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set; give the shard as --shard i/n');
  }
  let shard: SchedulerShard;
  if (slurmId !== undefined) {
    const min = integerVar(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    const step = integerVar(env, 'SLURM_ARRAY_TASK_STEP') ?? 1;
    const slurmCount = integerVar(env, 'SLURM_ARRAY_TASK_COUNT');
    if (step < 1) throw new SchedulerShardError(`--shard auto: SLURM_ARRAY_TASK_STEP=${step} must be at least 1`);
    if ((slurmId - min) % step !== 0 || slurmId < min) {
      throw new SchedulerShardError(
        `--shard auto: SLURM_ARRAY_TASK_ID=${slurmId} is not MIN + k*STEP (MIN ${min}, STEP ${step}); for an array given as a list, pass --shard i/n`,
      );
    }
    if (count !== undefined && slurmCount !== undefined && count !== slurmCount) {
      throw new SchedulerShardError(`--shard auto/${count}: the Slurm array has SLURM_ARRAY_TASK_COUNT=${slurmCount} tasks`);
    }
    const n = count ?? slurmCount;
    if (n === undefined) throw new SchedulerShardError('--shard auto: SLURM_ARRAY_TASK_COUNT is not set; give the count as --shard auto/N');
    shard = { index: (slurmId - min) / step, count: n, from: `SLURM_ARRAY_TASK_ID=${slurmId} (min ${min}, step ${step}, count ${n})` };
  } else if (k8sIndex !== undefined) {
    if (count === undefined) {
      throw new SchedulerShardError('--shard auto: JOB_COMPLETION_INDEX is set but Kubernetes does not export the number of completions; write --shard auto/N with N = the Job\'s completions');
    }
    shard = { index: k8sIndex, count, from: `JOB_COMPLETION_INDEX=${k8sIndex} (count ${count})` };
  } else {
    throw new SchedulerShardError('--shard auto: neither SLURM_ARRAY_TASK_ID (Slurm job array) nor JOB_COMPLETION_INDEX (Kubernetes Indexed Job) is set');
  }
  if (shard.count < 1) throw new SchedulerShardError(`--shard auto: the shard count must be at least 1 (${shard.from})`);
  if (shard.index >= shard.count) throw new SchedulerShardError(`--shard auto: shard index ${shard.index} is not below the count ${shard.count} (${shard.from})`);
  return shard;
}
