import { expect } from 'chai';
import { parseShard, shardPoints, SweepPlanError } from '../../src/sweep/plan.js';

/** `--shard auto[/n]`: the shard of a Slurm array task or a Kubernetes Indexed Job pod from its environment. */
describe('sweep shard from the scheduler (--shard auto)', () => {
  const slurm = (id: number, min: number, count: number, step = 1) => ({
    SLURM_ARRAY_TASK_ID: String(id),
    SLURM_ARRAY_TASK_MIN: String(min),
    SLURM_ARRAY_TASK_MAX: String(min + (count - 1) * step),
    SLURM_ARRAY_TASK_STEP: String(step),
    SLURM_ARRAY_TASK_COUNT: String(count),
  });

  it('gives the tasks of a Slurm array shards 0..n-1, whatever the array starts at and steps by', () => {
    for (const [min, step] of [[0, 1], [1, 1], [10, 5]]) {
      const count = 4;
      const shards = Array.from({ length: count }, (_, k) => parseShard('auto', slurm(min + k * step, min, count, step)));
      expect(shards.map((s) => [s.index, s.count])).to.deep.equal([[0, 4], [1, 4], [2, 4], [3, 4]]);
      expect(shards[1].from).to.match(new RegExp(`SLURM_ARRAY_TASK_ID=${min + step} \\(min ${min}, step ${step}, count 4\\)`));
    }
  });

  it('covers every sweep point once over the tasks of the array', () => {
    const points = Array.from({ length: 10 }, (_, i) => i);
    const taken = [1, 2, 3].flatMap((id) => shardPoints(points, parseShard('auto', slurm(id, 1, 3))));
    expect([...taken].sort((a, b) => a - b)).to.deep.equal(points);
  });

  it('takes the pod index of a Kubernetes Indexed Job with the count written in the flag', () => {
    expect(parseShard('auto/3', { JOB_COMPLETION_INDEX: '2' })).to.deep.include({ index: 2, count: 3 });
    expect(() => parseShard('auto', { JOB_COMPLETION_INDEX: '2' })).to.throw(SweepPlanError, /does not export the number of completions; write --shard auto\/N/);
    expect(() => parseShard('auto/2', { JOB_COMPLETION_INDEX: '2' })).to.throw(SweepPlanError, /shard index 2 is not below the count 2/);
  });

  it('refuses what it cannot map to a shard, saying why', () => {
    expect(() => parseShard('auto', {})).to.throw(SweepPlanError, /neither SLURM_ARRAY_TASK_ID .* nor JOB_COMPLETION_INDEX/);
    expect(() => parseShard('auto/5', slurm(1, 0, 4))).to.throw(SweepPlanError, /SLURM_ARRAY_TASK_COUNT=4/);
    expect(() => parseShard('auto', { SLURM_ARRAY_TASK_ID: '3' })).to.throw(SweepPlanError, /SLURM_ARRAY_TASK_COUNT is not set/);
    expect(() => parseShard('auto', { ...slurm(7, 0, 4, 2) })).to.throw(SweepPlanError, /not MIN \+ k\*STEP/);
    expect(() => parseShard('auto', { SLURM_ARRAY_TASK_ID: 'x' })).to.throw(SweepPlanError, /SLURM_ARRAY_TASK_ID=x is not a non-negative integer/);
    expect(() => parseShard('auto', { ...slurm(0, 0, 2), JOB_COMPLETION_INDEX: '0' })).to.throw(SweepPlanError, /both/);
  });

  it('leaves an explicit i/n alone, environment or not', () => {
    expect(parseShard('1/4', slurm(3, 0, 4))).to.deep.equal({ index: 1, count: 4 });
  });
});
