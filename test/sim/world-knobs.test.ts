import { expect } from 'chai';
import { simWorldOptions } from '../../src/run/data-stage.js';
import { SimWorldSchema } from '../../src/recipes/schema.js';
import { SimJudge } from '../../src/sim/judge.js';
import { SimPolicy } from '../../src/sim/policy.js';
import { sameValue, lastBoxed } from '../../src/sim/arith.js';
import { simProblems, simSolutions } from '../../src/sim/world.js';
import { Rng } from '../../src/util/rng.js';

/** The knobs recipes/paper/base.yaml sets to put the labels in the paper's noise regime. */
const paperWorld = SimWorldSchema.parse({
  min_steps: 2,
  max_steps: 4,
  ops: ['+', '-'],
  add_max: 3,
  start_min: 1,
  start_max: 9,
  max_value: 9,
  policy_strength: 0.1,
  recovery_scale: 12,
  difficulty_spread: 1.2,
  judge_false_alarm_rate: 0.3,
});

describe('sim world knobs of the recipes (label-noise regime)', () => {
  it('maps the recipe keys onto the policy and the judge', () => {
    const w = simWorldOptions(paperWorld);
    expect(w.policy).to.include({ strength: 0.1, recoveryScale: 12, difficultySpread: 1.2 });
    expect(w.judge).to.deep.equal({ falseAlarmRate: 0.3 });
    expect(simWorldOptions(SimWorldSchema.parse({})).judge).to.deep.equal({});
  });

  it('a judge with a higher false-alarm rate flags more right solutions', () => {
    const world = simWorldOptions(paperWorld);
    const right = simSolutions(simProblems(400, 3, world), 1, 3, world).filter((s) => s.firstError === -1);
    expect(right.length).to.be.greaterThan(100);
    const flagged = (rate: number) => {
      const judge = new SimJudge({ falseAlarmRate: rate, unparsableRate: 0 });
      const rng = new Rng(11);
      return right.filter((s) => judge.judge(s.problem, s.steps, rng).verdict !== -1).length / right.length;
    };
    const low = flagged(0.045);
    const high = flagged(0.3);
    // Per right step P(flag) = rate * 0.5 (single-digit + and -): about 5% vs 30% of 2-4-step solutions.
    expect(low).to.be.lessThan(0.12);
    expect(high).to.be.within(0.2, 0.5);
  });

  it('a wider difficulty spread makes more problems that the policy fails from the start every time', () => {
    const base = simWorldOptions(paperWorld);
    const problems = simProblems(300, 5, base);
    const allFail = (spread: number) => {
      const policy = new SimPolicy({ ...base.policy, difficultySpread: spread });
      const rng = new Rng(6);
      return problems.filter((p) => {
        for (let k = 0; k < 8; k++) {
          const { steps } = policy.solve(p, rng);
          const boxed = lastBoxed(steps[steps.length - 1] ?? '');
          if (boxed !== null && sameValue(Number(boxed), p.answer)) return false;
        }
        return true;
      }).length;
    };
    expect(allFail(2.5)).to.be.greaterThan(allFail(0) + 5);
  });
});
