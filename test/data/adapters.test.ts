import { expect } from 'chai';
import { join } from 'node:path';
import { readAllStepSamples, type ReadOptions } from '../../src/data/read.js';
import { readBonCandidates, readGsm8kExampleSolutions } from '../../src/data/bon.js';
import { readProcessBench } from '../../src/data/processbench.js';
import { stripCalculatorAnnotations } from '../../src/data/gsm8k.js';
import { lastBoxed } from '../../src/math/extract.js';
import { guessFormat } from '../../src/data/formats.js';
import { collect, tempDir, writeJsonlFile } from './support.js';

/** A PRM800K phase-2 style line (shape of openai/prm800k), built for the tests. */
function prm800kLine(overrides: { steps?: unknown[]; finish?: string } = {}) {
  return {
    labeler: 'labeler-1',
    timestamp: '2022-08-17T05:15:04',
    generation: 3,
    is_quality_control_question: false,
    is_initial_screening_question: false,
    question: {
      problem: 'What is 2 + 3 * 4?',
      ground_truth_answer: '14',
      ground_truth_solution: '3 * 4 = 12, and 2 + 12 = 14.',
      pre_generated_steps: ['x'],
      pre_generated_answer: '20',
      pre_generated_verifier_score: 0.12,
    },
    label: {
      steps: overrides.steps ?? [
        { completions: [{ text: 'Multiplication comes first.', rating: 1, flagged: false }], human_completion: null, chosen_completion: 0 },
        {
          completions: [
            { text: '3 * 4 = 12.', rating: 0, flagged: false },
            { text: '3 * 4 = 7.', rating: -1, flagged: false },
          ],
          human_completion: null,
          chosen_completion: 0,
        },
        { completions: null, human_completion: { text: 'Then 2 + 12 = 14.', rating: null }, chosen_completion: null },
        { completions: [{ text: 'The answer is 15.', rating: -1, flagged: false }], human_completion: null, chosen_completion: null },
      ],
      total_time: 91234,
      finish_reason: overrides.finish ?? 'found_error',
    },
  };
}

describe('data/adapters (inline fixtures)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(async () => cleanup());

  const read = async (name: string, records: unknown[], opts: ReadOptions) => readAllStepSamples(await writeJsonlFile(join(dir, name), records), opts);

  it('ProcessBench: label -> firstError, meta keeps subset, generator, correctness and unknown fields', async () => {
    const rec = { id: 'math-7', generator: 'Qwen2-7B-Instruct', problem: 'P', steps: ['a', 'b', 'c'], final_answer_correct: false, label: 1, extra: 5 };
    const { samples } = await read('pb.jsonl', [rec, { ...rec, id: 'math-8', label: -1 }], { format: 'processbench' });
    expect(samples[0]).to.deep.equal({
      id: 'math-7',
      problem: 'P',
      steps: ['a', 'b', 'c'],
      firstError: 1,
      source: 'processbench',
      meta: { subset: 'math', generator: 'Qwen2-7B-Instruct', final_answer_correct: false, extra: 5 },
    });
    expect(samples[1].firstError).to.equal(-1);
    expect(samples[0].labels).to.equal(undefined);
  });

  it('ProcessBench: readProcessBench reads a JSON array file and filters subsets', async () => {
    const path = join(dir, 'mixed.json');
    const recs = ['gsm8k-0', 'omnimath-3', 'gsm8k-1'].map((id) => ({ id, generator: 'g', problem: 'p', steps: ['s'], final_answer_correct: true, label: -1 }));
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, JSON.stringify(recs, null, 2));
    const all = await readProcessBench(path);
    expect(all.map((s) => s.meta.subset)).to.deep.equal(['gsm8k', 'omnimath', 'gsm8k']);
    const only = await readProcessBench(path, { subsets: ['gsm8k'] });
    expect(only.map((s) => s.id)).to.deep.equal(['gsm8k-0', 'gsm8k-1']);
  });

  it('PRM800K: chosen completion per step, human completions count good, first -1 is the first error', async () => {
    const { samples, stats } = await read('prm.jsonl', [prm800kLine()], { format: 'prm800k' });
    const s = samples[0];
    expect(s.problem).to.equal('What is 2 + 3 * 4?');
    expect(s.answer).to.equal('14');
    expect(s.steps).to.deep.equal(['Multiplication comes first.', '3 * 4 = 12.', 'Then 2 + 12 = 14.', 'The answer is 15.']);
    expect(s.labels).to.deep.equal([1, 1, 1, 0]);
    expect(s.firstError).to.equal(3);
    expect(s.meta.ratings).to.deep.equal([1, 0, null, -1]);
    expect(s.meta.finish_reason).to.equal('found_error');
    expect(s.meta.labeler).to.equal('labeler-1');
    expect(s.source).to.equal('prm800k');
    expect(stats.droppedSteps).to.equal(0);
  });

  it('PRM800K: neutral ratings are negative on request (and then count as the first error)', async () => {
    const { samples } = await read('prm-neg.jsonl', [prm800kLine()], { format: 'prm800k', neutral: 'negative' });
    expect(samples[0].labels).to.deep.equal([1, 0, 1, 0]);
    expect(samples[0].firstError).to.equal(1);
    expect(samples[0].meta.neutral).to.equal('negative');
  });

  it('PRM800K: a finished solution has firstError -1; a give-up leaves it unknown; steps after the first -1 are counted as dropped', async () => {
    const good = { completions: [{ text: 'ok', rating: 1 }], human_completion: null, chosen_completion: 0 };
    const bad = { completions: [{ text: 'wrong', rating: -1 }], human_completion: null, chosen_completion: 0 };
    const { samples, stats } = await read('prm-more.jsonl', [
      prm800kLine({ steps: [good, good], finish: 'solution' }),
      prm800kLine({ steps: [good], finish: 'give_up' }),
      prm800kLine({ steps: [good, bad, good, good], finish: 'found_error' }),
    ], { format: 'prm800k' });
    expect(samples[0].firstError).to.equal(-1);
    expect(samples[1].firstError).to.equal(undefined);
    expect(samples[2].steps).to.deep.equal(['ok', 'wrong']);
    expect(samples[2].firstError).to.equal(1);
    expect(stats.droppedSteps).to.equal(2);
    // Ending on rated alternatives none of which was chosen or bad: the first error is unknown, the step dropped.
    const open = { completions: [{ text: 'maybe', rating: 0 }, { text: 'perhaps', rating: 1 }], human_completion: null, chosen_completion: null };
    const ended = await read('prm-open.jsonl', [prm800kLine({ steps: [good, open], finish: 'found_error' })], { format: 'prm800k' });
    expect(ended.samples[0].steps).to.deep.equal(['ok']);
    expect(ended.samples[0].firstError).to.equal(undefined);
    expect(ended.stats.droppedSteps).to.equal(1);
    const human = { completions: [{ text: 'bad', rating: -1 }], human_completion: 'my own step', chosen_completion: null };
    const withHuman = await read('prm-human.jsonl', [prm800kLine({ steps: [human, good], finish: 'solution' })], { format: 'prm800k' });
    expect(withHuman.samples[0]).to.deep.include({ steps: ['my own step', 'ok'], labels: [1, 1], firstError: -1 });
  });

  it('PRM800K: a rating outside -1/0/1 names the field', async () => {
    const line = prm800kLine({ steps: [{ completions: [{ text: 'x', rating: 2 }], human_completion: null, chosen_completion: 0 }] });
    const err = await read('prm-bad.jsonl', [line], { format: 'prm800k' }).catch((e: Error) => e);
    expect((err as Error).message).to.include('prm-bad.jsonl:1: field "label.steps[0].completions[0].rating": expected -1, 0 or 1, got 2');
  });

  it('Math-Shepherd: ки tags give steps, +/- give labels, the problem is what precedes "Step 1:"', async () => {
    const input = 'Tom has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5. ки\nStep 2: He has 5 apples. The answer is: 5 ки';
    const label = 'Tom has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5. +\nStep 2: He has 5 apples. The answer is: 5 -';
    const { samples } = await read('ms.jsonl', [{ input, label, task: 'GSM8K' }], { format: 'math-shepherd' });
    expect(samples[0]).to.deep.include({
      problem: 'Tom has 3 apples and buys 2. How many?',
      steps: ['3 + 2 = 5.', 'He has 5 apples. The answer is: 5'],
      labels: [1, 0],
      firstError: 1,
      source: 'math-shepherd',
    });
    expect(samples[0].meta).to.deep.equal({ task: 'GSM8K' });
  });

  it('Math-Shepherd: a label text that does not match the input, or a sign other than +/-, is rejected', async () => {
    const input = 'Q? Step 1: a ки\nStep 2: b ки';
    const e1 = await read('ms-bad1.jsonl', [{ input, label: 'Q? Step 1: a +\nStep 2: c +' }], { format: 'math-shepherd' }).catch((e: Error) => e);
    expect((e1 as Error).message).to.match(/ms-bad1\.jsonl:1: field "label": does not match input before step tag 2/);
    const e2 = await read('ms-bad2.jsonl', [{ input, label: 'Q? Step 1: a +\nStep 2: b ?' }], { format: 'math-shepherd' }).catch((e: Error) => e);
    expect((e2 as Error).message).to.match(/field "label": expected '\+' or '-' at step tag 2/);
  });

  it('TRL stepwise: bool labels -> 0/1 with firstError; float labels stay floats', async () => {
    const { samples } = await read('trl.jsonl', [
      { prompt: 'P1', completions: ['a', 'b', 'c'], labels: [true, false, false] },
      { prompt: 'P2', completions: ['a', 'b'], labels: [0.75, 0.125] },
      { prompt: 'P3', completions: ['a'], labels: [1.0], id: 'custom', split: 'train' },
    ], { format: 'trl' });
    expect(samples[0]).to.deep.include({ id: 'trl-1', problem: 'P1', steps: ['a', 'b', 'c'], labels: [1, 0, 0], firstError: 1 });
    expect(samples[0].meta.label_type).to.equal('bool');
    expect(samples[1].labels).to.deep.equal([0.75, 0.125]);
    expect(samples[1].firstError).to.equal(undefined);
    expect(samples[1].meta.label_type).to.equal('float');
    expect(samples[2].id).to.equal('custom');
    expect(samples[2].meta.split).to.equal('train');
  });

  it('TRL stepwise: mixed label types are rejected naming the label', async () => {
    const err = await read('trl-mixed.jsonl', [{ prompt: 'P', completions: ['a', 'b'], labels: [true, 0.5] }], { format: 'trl' }).catch((e: Error) => e);
    expect((err as Error).message).to.include('trl-mixed.jsonl:1: field "labels[1]": labels must be all booleans or all numbers');
  });

  it('BoN: field-name variants (question/problem, gt/answer/final_answer, code/responses) and scores', async () => {
    const path = await writeJsonlFile(join(dir, 'bon.jsonl'), [
      { idx: 0, question: 'Q0', gt: '5', code: ['r0\n\nstep2', 'r1'], score: [true, false] },
      { problem: 'Q1', answer: 'So 2 + 2 = 4.\n#### 4', responses: ['x'], scores: [[0.9, 0.1]] },
      { question: 'Q2', final_answer: ['$\\frac{1}{2}$'] },
      { question: 'Q3', choices: ['one', 'two', 'three', 'four'], answer: 1 },
      { problem: 'Q4', solution: 'Hence $x = \\boxed{\\frac{3}{4}}$ cm.' },
    ]);
    const c = await collect(readBonCandidates(path));
    expect(c.map((x) => x.id)).to.deep.equal(['0', '1', '2', '3', '4']);
    expect(c.map((x) => x.answer)).to.deep.equal(['5', '4', '\\frac{1}{2}', 'B', '\\frac{3}{4}']);
    expect(c[0].responses).to.deep.equal(['r0\n\nstep2', 'r1']);
    expect(c[0].scores).to.equal(undefined); // Qwen's `score` is correctness, not a PRM score
    expect(c[1].scores).to.deep.equal([[0.9, 0.1]]);
    expect(c[2].responses).to.deep.equal([]);
    expect(c[3].problem).to.equal('Q3\nAnswer Choices: (A) one (B) two (C) three (D) four');
    expect(c[0].raw.score).to.deep.equal([true, false]);
    expect(c[4].line).to.equal(5);
  });

  it('BoN: explicit field options are used, and a missing one is named', async () => {
    const path = await writeJsonlFile(join(dir, 'bon-opts.jsonl'), [{ my_q: 'Q', gold: '7', outs: ['a', 'b'], s: [0.5, 0.25], key: 'k1' }]);
    const [c] = await collect(readBonCandidates(path, { problemField: 'my_q', answerField: 'gold', responsesField: 'outs', scoresField: 's', idField: 'key' }));
    expect(c).to.deep.include({ id: 'k1', problem: 'Q', answer: '7', responses: ['a', 'b'], scores: [0.5, 0.25] });
    const err = await collect(readBonCandidates(path, { problemField: 'my_q', answerField: 'nope' })).catch((e: Error) => e);
    expect((err as Error).message).to.include('bon-opts.jsonl:1: field "nope": missing');
    const noProblem = await collect(readBonCandidates(path)).catch((e: Error) => e);
    expect((noProblem as Error).message).to.include('bon-opts.jsonl:1: field "problem|question": no problem field');
  });

  it('BoN: a bad record fails naming file:line and field, or is skipped into the rejects file', async () => {
    const path = await writeJsonlFile(join(dir, 'bon-bad.jsonl'), [{ question: 'Q0', gt: '1' }, { question: 'Q1', gt: '2', code: 'not a list' }, { question: 'Q2', gt: '3' }]);
    const err = await collect(readBonCandidates(path)).catch((e: Error) => e);
    expect((err as Error).message).to.include('bon-bad.jsonl:2: field "code": expected an array of strings, got string');
    const rejectsPath = join(dir, 'bon-bad.rejects.jsonl');
    const kept = await collect(readBonCandidates(path, { onBadRecord: 'skip', rejectsPath }));
    expect(kept.map((c) => c.id)).to.deep.equal(['0', '2']);
    const { readFile } = await import('node:fs/promises');
    expect(JSON.parse((await readFile(rejectsPath, 'utf8')).trim())).to.deep.include({ line: 2, field: 'code' });
  });

  it('BoN as StepSamples: one per response, split into steps, scores and ids carried', async () => {
    const { samples } = await read('bon-steps.jsonl', [{ idx: 7, question: 'Q', gt: '5', code: ['a\n\nb', 'c'], scores: [0.5, [0.9]] }], { format: 'bon' });
    expect(samples.map((s) => [s.id, s.steps, s.answer, s.meta.score])).to.deep.equal([
      ['7-0', ['a', 'b'], '5', 0.5],
      ['7-1', ['c'], '5', [0.9]],
    ]);
  });

  it('GSM8K: "#### N" is the answer, lines are steps, calculator annotations are removed', async () => {
    const { samples } = await read('train.jsonl', [{ question: 'Q', answer: 'She sold 48/2 = <<48/2=24>>24 clips.\nIn all 48+24 = <<48+24=72>>72.\n#### 72' }], { format: 'gsm8k' });
    expect(samples[0]).to.deep.equal({ id: 'gsm8k-train-0', problem: 'Q', steps: ['She sold 48/2 = 24 clips.', 'In all 48+24 = 72.'], answer: '72', source: 'gsm8k', meta: {} });
    expect(stripCalculatorAnnotations('$<<12/60=0.2>>0.2')).to.equal('$0.2');
    const err = await read('nohash.jsonl', [{ question: 'Q', answer: 'no final line' }], { format: 'gsm8k' }).catch((e: Error) => e);
    expect((err as Error).message).to.include('nohash.jsonl:1: field "answer": no final "#### N" line');
  });

  it('GSM8K example solutions: one candidate per model with is_correct, answer from "A: N"', async () => {
    const line = {
      question: 'Q',
      ground_truth: 'x = <<1+1=2>>2\nA: 2',
      '6b_finetuning': { is_correct: false, solution: 'y = 3\nA: 3' },
      '175b_verification': { is_correct: true, solution: 'z = <<1+1=2>>2\nA: 2' },
    };
    const path = await writeJsonlFile(join(dir, 'example_model_solutions.jsonl'), [line]);
    const [c] = await collect(readGsm8kExampleSolutions(path));
    expect(c).to.deep.include({ id: 'gsm8k-test-0', problem: 'Q', answer: '2', responses: ['y = 3\nA: 3', 'z = <<1+1=2>>2\nA: 2'] });
    expect(c.meta).to.deep.equal({ models: ['6b_finetuning', '175b_verification'], is_correct: [false, true] });
    const { samples } = await readAllStepSamples(path, { format: 'gsm8k' });
    expect(samples.map((s) => [s.id, s.steps, s.meta.is_correct])).to.deep.equal([
      ['gsm8k-test-0-6b_finetuning', ['y = 3', 'A: 3'], false],
      ['gsm8k-test-0-175b_verification', ['z = 2', 'A: 2'], true],
    ]);
  });

  it('prmkit: the StepSample itself; meta may be a JSON string (Arrow/Parquet rows); unknown fields rejected', async () => {
    const s = { id: 'a', problem: 'p', steps: ['x', 'y'], labels: [1, 0.5], source: 's', meta: '{"k":1}' };
    const { samples } = await read('pk.jsonl', [s], { format: 'prmkit' });
    expect(samples[0]).to.deep.equal({ id: 'a', problem: 'p', steps: ['x', 'y'], labels: [1, 0.5], source: 's', meta: { k: 1 } });
    const err = await read('pk-bad.jsonl', [{ ...s, stepz: [] }], { format: 'prmkit' }).catch((e: Error) => e);
    expect((err as Error).message).to.include('pk-bad.jsonl:1: field "stepz": unknown field');
  });

  it('guesses the format from a record', () => {
    expect(guessFormat({ id: 'a', problem: 'p', steps: [], source: 's', meta: {} })).to.equal('prmkit');
    expect(guessFormat({ id: 'a', problem: 'p', steps: [], label: -1 })).to.equal('processbench');
    expect(guessFormat(prm800kLine())).to.equal('prm800k');
    expect(guessFormat({ input: 'q Step 1: a ки', label: 'q Step 1: a +' })).to.equal('math-shepherd');
    expect(guessFormat({ prompt: 'p', completions: [], labels: [] })).to.equal('trl');
    expect(guessFormat({ question: 'q', answer: 'a\n#### 1' })).to.equal('gsm8k');
    expect(guessFormat({ question: 'q', ground_truth: 'A: 1' })).to.equal('gsm8k');
    expect(guessFormat({ question: 'q', gt: '1', code: [] })).to.equal('bon');
    expect(guessFormat({ unrelated: 1 })).to.equal(undefined);
  });

  it('lastBoxed handles nesting, \\fbox and escaped braces', () => {
    expect(lastBoxed('a \\boxed{1} b \\boxed{\\frac{1}{2}}')).to.equal('\\frac{1}{2}');
    expect(lastBoxed('\\fbox{x\\}y}')).to.equal('x\\}y');
    expect(lastBoxed('no box')).to.equal(null);
    expect(lastBoxed('\\boxed{unclosed')).to.equal(null);
  });
});
