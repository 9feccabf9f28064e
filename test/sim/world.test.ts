import { expect } from 'chai';
import { Rng } from '../../src/util/rng.js';
import { validateStepSample } from '../../src/data/validate.js';
import { gradeAnswer } from '../../src/math/index.js';
import { applyOp, parseEquation } from '../../src/sim/arith.js';
import { analyzePrefix, checkSolution } from '../../src/sim/check.js';
import { SimJudge } from '../../src/sim/judge.js';
import { SimPolicy } from '../../src/sim/policy.js';
import { generateProblem, parseProblem } from '../../src/sim/problems.js';
import { goldSteps, renderStep } from '../../src/sim/steps.js';
import { simBonCandidates, simProblems, simProcessBench, simSolutions, type SimTruth } from '../../src/sim/world.js';

const truthOf = (s: { meta: Record<string, unknown> }) => s.meta.truth as SimTruth;

describe('sim world: problems', () => {
  it('is deterministic per seed, and different seeds give different problems', () => {
    const a = simProblems(20, 1);
    expect(simProblems(20, 1)).to.deep.equal(a);
    expect(simProblems(20, 2).map((p) => p.text)).to.not.deep.equal(a.map((p) => p.text));
  });

  it('respects the knobs: step counts, value range, operations, integer results', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) {
      const p = generateProblem(rng, `p${i}`, { minSteps: 2, maxSteps: 4, maxValue: 300, ops: ['+', '*', '/'] });
      expect(p.ops.length).to.be.within(2, 4);
      for (const op of p.ops) expect(['+', '*', '/']).to.include(op.symbol);
      for (const v of p.values) {
        expect(Number.isInteger(v), `value ${v}`).to.equal(true);
        expect(v).to.be.within(1, 300);
      }
    }
    expect(() => generateProblem(new Rng(1), 'x', { minSteps: 3, maxSteps: 2 })).to.throw(/maxSteps/);
  });

  it('reads every problem back from its text (the policy and judge see only text)', () => {
    for (const p of simProblems(300, 5)) {
      const parsed = parseProblem(p.text, p.id);
      expect(parsed, p.text).to.not.equal(null);
      expect(parsed!.ops).to.deep.equal(p.ops);
      expect(parsed!.answer).to.equal(p.answer);
    }
    expect(parseProblem('Natalia sold clips to 48 of her friends in April. How many clips?')).to.equal(null);
  });

  it('writes gold steps that the checker finds correct and that end in \\boxed{answer}', () => {
    for (const p of simProblems(100, 6)) {
      const steps = goldSteps(p);
      expect(steps.length).to.equal(p.ops.length);
      expect(checkSolution(p, steps)).to.deep.equal({ firstError: -1, kind: null });
      expect(gradeAnswer(steps.join('\n\n'), String(p.answer)).correct).to.equal(true);
    }
  });
});

describe('sim world: the truth checker', () => {
  const problem = parseProblem('Sam has 12 apples. Then Sam buys 7 more apples. Sam loses 4 apples. Sam multiplies the collection of apples by 3. How many apples does Sam have at the end?')!;
  const step = (symbol: '+' | '-' | '*', a: number, b: number, r: number, final = false) => renderStep(problem, { symbol, a, b, r, variant: 0, final });

  it('classifies each kind of first error', () => {
    const ok0 = step('+', 12, 7, 19);
    const ok1 = step('-', 19, 4, 15);
    expect(checkSolution(problem, [ok0, ok1, step('*', 15, 3, 45, true)])).to.deep.equal({ firstError: -1, kind: null });
    expect(checkSolution(problem, [step('+', 12, 7, 20), step('-', 20, 4, 16)]).kind).to.equal('arithmetic');
    expect(checkSolution(problem, [ok0, step('-', 19, 3, 16)])).to.deep.equal({ firstError: 1, kind: 'wrong_operand' });
    expect(checkSolution(problem, [ok0, step('*', 19, 3, 57, true)])).to.deep.equal({ firstError: 1, kind: 'skipped_step' });
    expect(checkSolution(problem, [ok0, step('+', 19, 7, 26)])).to.deep.equal({ firstError: 1, kind: 'repeated_step' });
    expect(checkSolution(problem, [ok0, ok1, step('*', 15, 3, 45)])).to.deep.equal({ firstError: 2, kind: 'wrong_final_answer' });
    expect(checkSolution(problem, [ok0, ok1, step('*', 15, 3, 45)], { partial: true }).firstError).to.equal(-1);
  });

  it('follows a wrong prefix: running value and next operation', () => {
    const state = analyzePrefix(problem, [step('+', 12, 7, 20), step('-', 20, 4, 16)]);
    expect(state).to.include({ next: 2, value: 16, done: false, firstErrorKind: 'arithmetic' });
    const skipped = analyzePrefix(problem, [step('+', 12, 7, 19), step('*', 19, 3, 57)]);
    expect(skipped).to.include({ next: 3, value: 57, firstErrorKind: 'skipped_step' });
  });
});

describe('sim world: the policy', () => {
  const problems = simProblems(400, 11);
  const solutions = simSolutions(problems, 1, 12);

  it('writes valid, truth-labelled StepSamples whose recorded slip is the first error the checker sees', () => {
    for (const s of solutions) {
      expect(validateStepSample(s), s.id).to.deep.equal([]);
      const t = truthOf(s);
      expect(s.firstError).to.equal(t.firstError);
      const slips = s.meta.slips as { step: number; kind: string }[];
      if (t.firstError === -1) expect(slips).to.deep.equal([]);
      else expect(slips[0]).to.deep.equal({ step: t.firstError, kind: t.errorKind });
      expect(s.labels).to.deep.equal(s.steps.map((_, i) => (t.firstError === -1 || i < t.firstError ? 1 : 0)));
      expect(t.finalAnswerCorrect).to.equal(gradeAnswer(s.steps.join('\n\n'), s.answer!).correct);
    }
  });

  it('makes every kind of slip, and sometimes reaches the right answer after a wrong step', () => {
    const kinds = new Set(solutions.map((s) => truthOf(s).errorKind));
    for (const k of ['arithmetic', 'wrong_operand', 'skipped_step', 'repeated_step', null]) expect(kinds, String(k)).to.include(k);
    const wrong = solutions.filter((s) => truthOf(s).firstError !== -1);
    const recovered = wrong.filter((s) => truthOf(s).finalAnswerCorrect);
    expect(wrong.length / solutions.length).to.be.within(0.3, 0.65);
    expect(recovered.length).to.be.greaterThan(5);
  });

  it('propagates errors: later steps compute correctly from the wrong value', () => {
    let checked = 0;
    for (const s of solutions) {
      const t = truthOf(s);
      if (t.firstError === -1 || (s.meta.recoveries as unknown[]).length > 0) continue;
      const eqs = s.steps.map(parseEquation);
      const slipped = new Set((s.meta.slips as { step: number }[]).map((x) => x.step));
      for (let i = t.firstError + 1; i < eqs.length; i++) {
        if (slipped.has(i)) continue;
        expect(eqs[i]!.a, s.id).to.equal(eqs[i - 1]!.result);
        expect(eqs[i]!.result).to.be.closeTo(applyOp(eqs[i]!.a, eqs[i]!.symbol, eqs[i]!.b), 1e-9);
        checked++;
      }
    }
    expect(checked).to.be.greaterThan(50);
  });

  it('continues a wrong prefix from its wrong value, and a right one mostly to the right answer', () => {
    const policy = new SimPolicy();
    const p = problems.find((x) => x.ops.length >= 4)!;
    const gold = goldSteps(p);
    const wrongFirst = renderStep(p, { symbol: p.ops[0].symbol, a: p.start, b: p.ops[0].operand, r: p.values[1] + 1, variant: 0 });
    const continuations = Array.from({ length: 20 }, (_, i) => policy.continueFrom(p, [wrongFirst], new Rng(i)));
    const unrecovered = continuations.filter((c) => c.trace.recoveries.length === 0);
    expect(unrecovered.length).to.be.greaterThan(10);
    for (const c of unrecovered) expect(parseEquation(c.steps[0])!.a).to.equal(p.values[1] + 1);
    let right = 0;
    for (let i = 0; i < 100; i++) {
      const steps = [...gold.slice(0, 1), ...policy.continueFrom(p, gold.slice(0, 1), new Rng(i)).steps];
      if (gradeAnswer(steps.join('\n\n'), String(p.answer)).correct) right++;
    }
    expect(right).to.be.greaterThan(20);
    expect(policy.continueFrom(p, gold, new Rng(1)).steps).to.deep.equal([]);
  });

  it('recovers more after arithmetic slips than after wrong operands, and more with a higher recovery scale', () => {
    const rate = (scale: number, kind: 'arithmetic' | 'wrong_operand') => {
      const policy = new SimPolicy({ recoveryScale: scale });
      let recovered = 0;
      let total = 0;
      for (const p of problems.slice(0, 150)) {
        if (p.ops.length < 4) continue;
        const first =
          kind === 'arithmetic'
            ? renderStep(p, { symbol: p.ops[0].symbol, a: p.start, b: p.ops[0].operand, r: p.values[1] + 2, variant: 0 })
            : renderStep(p, { symbol: p.ops[0].symbol, a: p.start, b: p.ops[0].operand + 1, r: applyOp(p.start, p.ops[0].symbol, p.ops[0].operand + 1), variant: 0 });
        if (checkSolution(p, [first], { partial: true }).kind !== kind) continue;
        for (let i = 0; i < 10; i++) {
          total++;
          if (policy.continueFrom(p, [first], new Rng(`${p.id}:${i}`)).trace.recoveries.length > 0) recovered++;
        }
      }
      return recovered / total;
    };
    expect(rate(1, 'arithmetic')).to.be.greaterThan(3 * rate(1, 'wrong_operand'));
    expect(rate(3, 'arithmetic')).to.be.greaterThan(rate(1, 'arithmetic'));
  });

  it('continues text that is not a sim problem plausibly, ending in \\boxed{}', () => {
    const steps = new SimPolicy().continueText('Natalia sold 48 clips in April and half as many in May. How many in total?', ['She sold 48 / 2 = 24 in May.'], new Rng(2));
    expect(steps.length).to.be.greaterThan(0);
    expect(steps[steps.length - 1]).to.match(/\\boxed\{-?[\d.]+\}/);
  });

  it('slips less with a higher strength', () => {
    const errors = (strength: number) => simSolutions(problems.slice(0, 200), 1, 3, { policy: { strength } }).filter((s) => s.firstError !== -1).length;
    expect(errors(0.8)).to.be.lessThan(errors(0.5));
    expect(errors(0.5)).to.be.lessThan(errors(0.2));
  });
});

describe('sim world: the judge', () => {
  const solutions = simSolutions(simProblems(300, 21), 1, 22);

  it('is exact with no noise, and says "none" when it never detects', () => {
    const perfect = new SimJudge({ detect: { other: 1, arithmetic: 1, wrong_operand: 1, skipped_step: 1, repeated_step: 1 }, falseAlarmRate: 0, unparsableRate: 0 });
    const blind = new SimJudge({ detect: { other: 0, arithmetic: 0, wrong_operand: 0, skipped_step: 0, repeated_step: 0 }, lateFlagShare: 0, falseAlarmRate: 0, unparsableRate: 0 });
    for (const s of solutions) {
      expect(perfect.judge(s.problem, s.steps, new Rng(s.id)).verdict).to.equal(s.firstError);
      expect(blind.judge(s.problem, s.steps, new Rng(s.id)).verdict).to.equal(-1);
    }
  });

  it('follows its noise model by error kind: good at arithmetic, poor at wrong operands', () => {
    const judge = new SimJudge({ unparsableRate: 0 });
    const acc = new Map<string, { n: number; hit: number }>();
    for (const s of solutions) {
      const kind = truthOf(s).errorKind ?? 'none';
      for (let i = 0; i < 5; i++) {
        const v = judge.judge(s.problem, s.steps, new Rng(`${s.id}:${i}`)).verdict;
        const row = acc.get(kind) ?? { n: 0, hit: 0 };
        row.n++;
        if (v === s.firstError) row.hit++;
        acc.set(kind, row);
      }
    }
    const rate = (k: string) => acc.get(k)!.hit / acc.get(k)!.n;
    expect(rate('arithmetic')).to.be.greaterThan(0.75);
    expect(rate('wrong_operand')).to.be.lessThan(0.6);
    expect(rate('none')).to.be.within(0.6, 0.95);
  });

  it('writes parsable replies with the verdict boxed, and at its set rate replies that are not', () => {
    const judge = new SimJudge({ unparsableRate: 0.5 });
    let unparsable = 0;
    for (const s of solutions.slice(0, 100)) {
      const { verdict, reply } = judge.judge(s.problem, s.steps, new Rng(s.id));
      if (verdict === null) unparsable++;
      else expect(reply).to.contain(`\\boxed{${verdict}}`);
    }
    expect(unparsable).to.be.within(30, 70);
  });
});

describe('sim world: benchmark sets', () => {
  it('simProcessBench is balanced, deterministic and ProcessBench-shaped', () => {
    const set = simProcessBench(60, 4);
    expect(set).to.have.length(60);
    expect(set.filter((s) => s.firstError === -1)).to.have.length(30);
    expect(simProcessBench(60, 4)).to.deep.equal(set);
    expect(new Set(set.map((s) => s.id)).size).to.equal(60);
    for (const s of set) {
      expect(s.meta.subset).to.equal('sim');
      expect(s.firstError).to.equal(truthOf(s).firstError);
    }
  });

  it('simBonCandidates has N graded-able responses per problem with a mix of right and wrong', () => {
    const cands = simBonCandidates(30, 8, 9);
    expect(cands).to.have.length(30);
    let right = 0;
    let total = 0;
    for (const c of cands) {
      expect(c.responses).to.have.length(8);
      for (const r of c.responses) {
        total++;
        if (gradeAnswer(r, c.answer).correct) right++;
      }
    }
    expect(right / total).to.be.within(0.3, 0.9);
    expect(simBonCandidates(30, 8, 9)).to.deep.equal(cands);
  });
});

