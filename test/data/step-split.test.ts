import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createStepSplitter, describeSplitStats, resolveSplitOptions, splitThink } from '../../src/data/step-split.js';
import { readGsm8kExampleSolutions, type BonCandidate } from '../../src/data/bon.js';
import { SHARED_DATA } from './support.js';

/** The text with all whitespace removed: what splitting must preserve (it only cuts and trims). */
const squash = (s: string) => s.replace(/\s+/g, '');

describe('step splitter', () => {
  it('cuts paragraphs (default), lines, sentences or on a separator; trims and drops blank pieces', () => {
    const text = 'First step.\nStill first.\n\n\n  Second step. It has two sentences!  \n\nThird';
    expect(createStepSplitter().split(text)).to.deep.equal(['First step.\nStill first.', 'Second step. It has two sentences!', 'Third']);
    expect(createStepSplitter({ mode: 'lines' }).split(text)).to.deep.equal(['First step.', 'Still first.', 'Second step. It has two sentences!', 'Third']);
    expect(createStepSplitter({ mode: 'sentences' }).split(text)).to.deep.equal(['First step.', 'Still first.', 'Second step.', 'It has two sentences!', 'Third']);
    expect(createStepSplitter({ separator: 'ки' }).split('a ки b ки ')).to.deep.equal(['a', 'b']);
    expect(createStepSplitter().split(' \n\n ')).to.deep.equal([]);
  });

  it('merges steps shorter than the minimum into the next one, the last into the one before', () => {
    const s = createStepSplitter({ minChars: 8 });
    expect(s.split('Step 1:\n\nx = 2 + 3 = 5\n\nok\n\nSo the answer is 5.\n\nDone')).to.deep.equal([
      'Step 1:\n\nx = 2 + 3 = 5',
      'ok\n\nSo the answer is 5.\n\nDone',
    ]);
    expect(s.stats.merged_short).to.equal(3);
    expect(createStepSplitter({ minChars: 100 }).split('a\n\nb')).to.deep.equal(['a\n\nb']);
  });

  it('caps the number of steps by merging the tail into the last step', () => {
    const s = createStepSplitter({ mode: 'lines', maxSteps: 3 });
    expect(s.split('1\n2\n3\n4\n5')).to.deep.equal(['1', '2', '3\n4\n5']);
    expect(s.split('1\n2')).to.deep.equal(['1', '2']);
    expect(s.stats).to.include({ responses: 2, steps: 5, capped_responses: 1, capped_steps: 2 });
  });

  it('think blocks: scored with the rest, skipped, or one step alone', () => {
    const text = 'Prefix\n\n<think>\nLet me see.\n\nMaybe 4?\n</think>\n\nThe sum is 4.\n\nAnswer: 4';
    expect(createStepSplitter({ think: 'scored' }).split(text)).to.deep.equal(['Prefix', 'Let me see.', 'Maybe 4?', 'The sum is 4.', 'Answer: 4']);
    expect(createStepSplitter({ think: 'skipped' }).split(text)).to.deep.equal(['Prefix', 'The sum is 4.', 'Answer: 4']);
    expect(createStepSplitter({ think: 'alone' }).split(text)).to.deep.equal(['Prefix', 'Let me see.\n\nMaybe 4?', 'The sum is 4.', 'Answer: 4']);
    // </think> without <think> (the template opened it in the prompt)
    expect(splitThink('reasoning</think>answer')).to.deep.equal({ before: '', think: 'reasoning', after: 'answer', closed: true });
    // cut off while thinking: all of it is the block, so skipping it leaves no step
    const cut = createStepSplitter({ think: 'skipped' });
    expect(cut.split('<think>\nstill going\n\nand going')).to.deep.equal([]);
    expect(cut.stats).to.include({ think_blocks: 1, think_skipped: 1, empty: 1 });
    expect(describeSplitStats(cut.stats)).to.match(/1 think blocks \(1 skipped\); 1 without any step/);
  });

  it('rejects bad options by name', () => {
    expect(() => resolveSplitOptions({ mode: 'words' as never })).to.throw(/split mode must be one of paragraphs, lines, sentences/);
    expect(() => resolveSplitOptions({ maxSteps: 0 })).to.throw(/maximum steps/);
    expect(() => resolveSplitOptions({ minChars: -1 })).to.throw(/minimum step length/);
    expect(() => resolveSplitOptions({ separator: '' })).to.throw(/must not be empty/);
    expect(() => resolveSplitOptions({ think: 'maybe' as never })).to.throw(/think must be one of/);
  });
});

describe('step splitter on real data', function () {
  const processbenchDir = join(SHARED_DATA, 'processbench');
  const solutionsFile = join(SHARED_DATA, 'gsm8k', 'example_model_solutions.jsonl');

  it('ProcessBench: joining the steps with blank lines and splitting again gives the steps back', function () {
    if (!existsSync(processbenchDir)) {
      console.warn(`      (skipped: ${processbenchDir} is absent)`);
      this.skip();
    }
    const samples = ['gsm8k', 'math', 'olympiadbench', 'omnimath'].flatMap(
      (s) => JSON.parse(readFileSync(join(processbenchDir, `${s}.json`), 'utf8')) as { id: string; steps: string[] }[],
    );
    const splitter = createStepSplitter();
    let exact = 0;
    let withBlankLines = 0;
    for (const s of samples) {
      const text = s.steps.join('\n\n');
      const steps = splitter.split(text);
      expect(squash(steps.join('')), s.id).to.equal(squash(text));
      if (s.steps.some((step) => step.includes('\n\n') || step.trim() === '')) withBlankLines++;
      else {
        expect(steps, s.id).to.deep.equal(s.steps.map((step) => step.trim()));
        exact++;
      }
    }
    expect(exact + withBlankLines).to.equal(3400);
    expect(exact).to.be.greaterThan(3000);
    // A cap keeps every word: the tail is merged, not dropped.
    const capped = createStepSplitter({ maxSteps: 4, minChars: 40 });
    for (const s of samples) {
      const text = s.steps.join('\n\n');
      const steps = capped.split(text);
      expect(steps.length, s.id).to.be.at.most(4);
      expect(squash(steps.join('')), s.id).to.equal(squash(text));
      if (steps.length > 1) steps.forEach((step) => expect(step.length, s.id).to.be.at.least(40));
    }
    expect(capped.stats.capped_responses).to.be.greaterThan(0);
  });

  it('real Best-of-N responses (GSM8K example solutions): lines, sentences and think blocks keep all text', async function () {
    if (!existsSync(solutionsFile)) {
      console.warn(`      (skipped: ${solutionsFile} is absent)`);
      this.skip();
    }
    const candidates: BonCandidate[] = [];
    for await (const c of readGsm8kExampleSolutions(solutionsFile)) candidates.push(c);
    const lines = createStepSplitter({ mode: 'lines' });
    const sentences = createStepSplitter({ mode: 'sentences' });
    const paragraphs = createStepSplitter();
    let moreSentences = 0;
    for (const c of candidates) {
      for (const r of c.responses) {
        const byLine = lines.split(r);
        const bySentence = sentences.split(r);
        expect(squash(byLine.join('')), c.id).to.equal(squash(r));
        expect(squash(bySentence.join('')), c.id).to.equal(squash(r));
        // Sentences never cross a line break, so there are at least as many as lines.
        expect(bySentence.length, c.id).to.be.at.least(byLine.length);
        if (bySentence.length > byLine.length) moreSentences++;
        // These solutions put one step per line and no blank lines: one paragraph each.
        expect(paragraphs.split(r)).to.have.length(r.trim() === '' ? 0 : 1);
        // The same solution as a reasoning model would write it: thought, then the answer.
        const wrapped = `<think>\n${r}\n</think>\n\n${byLine[byLine.length - 1] ?? ''}`;
        expect(createStepSplitter({ mode: 'lines', think: 'skipped' }).split(wrapped)).to.deep.equal(byLine.slice(-1));
        expect(createStepSplitter({ mode: 'lines', think: 'alone' }).split(wrapped)).to.deep.equal([r.trim(), ...byLine.slice(-1)].filter((x) => x !== ''));
        expect(createStepSplitter({ mode: 'lines', think: 'scored' }).split(wrapped)).to.deep.equal([...byLine, ...byLine.slice(-1)]);
      }
    }
    expect(lines.stats.responses).to.equal(candidates.length * 4);
    expect(moreSentences).to.be.greaterThan(100);
  });
});
