import { expect } from 'chai';
import { join } from 'node:path';
import { readBonCandidates, readGsm8kExampleSolutions, type BonCandidate } from '../../src/data/bon.js';
import { readProcessBench, PROCESSBENCH_SUBSETS } from '../../src/data/processbench.js';
import { readAllStepSamples } from '../../src/data/read.js';
import { collect, needSharedData } from './support.js';

describe('data on the real reference files (../shared/data)', function () {
  this.timeout(60_000);

  it('ProcessBench: all 3,400 records of the 4 subsets read, with the published error/correct split', async function () {
    const dir = needSharedData(this, 'processbench');
    const samples = await readProcessBench(dir);
    expect(samples).to.have.length(3400);
    expect(new Set(samples.map((s) => s.id)).size).to.equal(3400);
    const expected = { gsm8k: [400, 207, 2082], math: [1000, 594, 6505], olympiadbench: [1000, 661, 8819], omnimath: [1000, 759, 8291] };
    for (const subset of PROCESSBENCH_SUBSETS) {
      const part = samples.filter((s) => s.meta.subset === subset);
      const withError = part.filter((s) => s.firstError! >= 0).length;
      const steps = part.reduce((n, s) => n + s.steps.length, 0);
      expect([part.length, withError, steps], subset).to.deep.equal(expected[subset]);
    }
    const first = samples[0];
    expect(first).to.deep.include({ id: 'gsm8k-0', firstError: 1, source: 'processbench' });
    expect(first.meta).to.deep.equal({ subset: 'gsm8k', generator: 'Qwen2-7B-Instruct', final_answer_correct: false });
    expect(samples.find((s) => s.id === 'math-999')!.firstError).to.equal(2);
    expect(samples.every((s) => typeof s.meta.final_answer_correct === 'boolean' && typeof s.meta.generator === 'string')).to.equal(true);
    const only = await readProcessBench(dir, { subsets: ['omnimath', 'gsm8k'] });
    expect(only.map((s) => s.meta.subset).filter((v, i, a) => a.indexOf(v) === i)).to.deep.equal(['omnimath', 'gsm8k']);
    expect(only).to.have.length(1400);
  });

  it('ProcessBench: one subset file read through readStepSamples reports line numbers of array elements', async function () {
    const file = join(needSharedData(this, 'processbench'), 'gsm8k.json');
    const { samples, stats } = await readAllStepSamples(file, { format: 'processbench' });
    expect(samples).to.have.length(400);
    expect(stats).to.deep.include({ records: 400, samples: 400, rejected: 0, droppedSteps: 0, done: true });
  });

  it('GSM8K train (7,473) and test (1,319): answers from "#### N", no calculator annotations left', async function () {
    const dir = needSharedData(this, 'gsm8k');
    const expected = { train: [7473, 26720, '72', '50'], test: [1319, 4819, '18', '14'] } as const;
    for (const split of ['train', 'test'] as const) {
      const { samples } = await readAllStepSamples(join(dir, `${split}.jsonl`), { format: 'gsm8k' });
      const steps = samples.reduce((n, s) => n + s.steps.length, 0);
      expect([samples.length, steps, samples[0].answer, samples[samples.length - 1].answer], split).to.deep.equal([...expected[split]]);
      expect(samples.every((s) => s.steps.every((t) => !t.includes('<<') && !t.includes('>>')))).to.equal(true);
      expect(samples.every((s) => /^-?[\d,]+(\.\d+)?$/.test(s.answer!))).to.equal(true);
      expect(samples[0].id).to.equal(`gsm8k-${split}-0`);
    }
  });

  it('GSM8K example model solutions: 1,319 problems x 4 models = 5,276 solutions, 2,001 marked correct', async function () {
    const file = join(needSharedData(this, 'gsm8k'), 'example_model_solutions.jsonl');
    const candidates = await collect(readGsm8kExampleSolutions(file));
    expect(candidates).to.have.length(1319);
    expect(candidates.every((c) => c.responses.length === 4)).to.equal(true);
    const correct = candidates.flatMap((c) => c.meta!.is_correct as boolean[]).filter(Boolean).length;
    expect(correct).to.equal(2001);
    expect(candidates[0]).to.deep.include({ id: 'gsm8k-test-0', answer: '18' });
    expect(candidates[0].meta!.models).to.deep.equal(['6b_finetuning', '6b_verification', '175b_finetuning', '175b_verification']);
    // Same problems, same order as test.jsonl.
    const { samples: test } = await readAllStepSamples(join(needSharedData(this, 'gsm8k'), 'test.jsonl'), { format: 'gsm8k' });
    expect(candidates.every((c, i) => c.problem === test[i].problem && c.answer === test[i].answer)).to.equal(true);
  });

  describe('bon-eval: the field names of each set are handled (pinned)', () => {
    // [set, records, field the problem comes from, where the gold answer comes from, answer of record 0, 1 and last]
    const table: [string, number, string, string, string, string, string][] = [
      ['gsm8k', 1319, 'question', 'answer after ####', '18', '3', '14'],
      ['minerva_math', 272, 'problem', 'last \\boxed{} of solution', '1.6', '4.5e33', '10.1'],
      ['mmlu_stem', 3018, 'question + choices', 'choice index -> letter', 'C', 'C', 'D'],
      ['olympiadbench', 675, 'question', 'final_answer[0] without $', '2', '\\frac{1}{2 n+2}', '11'],
      ['college_math', 2818, 'question', 'answer without $', '10-4 n', '(45,2),(-10,-9)', 'y= \\pm \\frac{\\sqrt{2 x+c}}{1+x^{2}}'],
      ['gaokao2023en', 385, 'question', 'answer without $', '\\{x|-2\\leq x < 1\\}', '-1-\\sqrt{3}', 'K'],
    ];
    for (const [set, n, problemFrom, answerFrom, a0, a1, aLast] of table) {
      it(`${set}: ${n} problems, problem from ${problemFrom}, answer from ${answerFrom}`, async function () {
        const file = join(needSharedData(this, 'bon-eval'), set, 'test.jsonl');
        const c: BonCandidate[] = await collect(readBonCandidates(file));
        expect(c).to.have.length(n);
        expect([c[0].answer, c[1].answer, c[c.length - 1].answer]).to.deep.equal([a0, a1, aLast]);
        expect(c.every((x) => x.problem.trim() !== '' && x.responses.length === 0)).to.equal(true);
        // gaokao2023en ships two problems without a gold answer; they are kept (answer ''), not dropped.
        expect(c.filter((x) => x.answer.trim() === '').map((x) => x.line)).to.deep.equal(set === 'gaokao2023en' ? [168, 193] : []);
        expect(new Set(c.map((x) => x.id)).size).to.equal(n);
        if (set === 'mmlu_stem') expect(c.every((x) => x.problem.includes('\nAnswer Choices: (A) ') && /^[A-D]$/.test(x.answer))).to.equal(true);
      });
    }
  });
});
