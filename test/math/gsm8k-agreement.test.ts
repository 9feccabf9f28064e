import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJsonlAll } from '../../src/data/jsonl.js';
import { gradeFile } from '../../src/math/grade-file.js';
import { sharedDataOrSkip } from './shared-data.js';

const MODELS = ['6b_finetuning', '6b_verification', '175b_finetuning', '175b_verification'];
/** Issue threshold, and the figure measured when this test was written (a regression guard). */
const REQUIRED_AGREEMENT = 0.995;
const MEASURED_AGREEMENT = 1.0;

describe('grading GSM8K example model solutions (prmkit grade vs OpenAI is_correct)', function () {
  this.timeout(180_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'prmkit-grade-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`agrees on at least ${REQUIRED_AGREEMENT * 100}% of the 5,276 solutions`, async function () {
    const solutionsPath = sharedDataOrSkip(this, 'gsm8k/example_model_solutions.jsonl');
    const testPath = sharedDataOrSkip(this, 'gsm8k/test.jsonl');
    if (!solutionsPath || !testPath) return;

    // Gold answers come from the test split (after "####"), matched by question text.
    const goldByQuestion = new Map<string, string>();
    for (const { value } of await readJsonlAll(testPath)) {
      const row = value as { question: string; answer: string };
      goldByQuestion.set(row.question, row.answer);
    }
    const flat: string[] = [];
    for (const { value, line } of await readJsonlAll(solutionsPath)) {
      const row = value as Record<string, unknown> & { question: string };
      const answer = goldByQuestion.get(row.question);
      if (answer === undefined) throw new Error(`${solutionsPath}:${line}: question not in test.jsonl`);
      for (const model of MODELS) {
        const s = row[model] as { solution: string; is_correct: boolean };
        flat.push(JSON.stringify({ line, model, solution: s.solution, is_correct: s.is_correct, answer }));
      }
    }
    expect(flat.length).to.equal(5276);
    const input = join(dir, 'solutions.jsonl');
    const out = join(dir, 'graded.jsonl');
    writeFileSync(input, `${flat.join('\n')}\n`);

    const summary = await gradeFile({ input, out, responseField: 'solution', answerField: 'answer', progress: false });
    const graded = (await readJsonlAll(out)).map((l) => l.value as { line: number; model: string; is_correct: boolean; correct: boolean; extracted: string | null; answer: string });
    expect(graded.length).to.equal(5276);
    const disagreements = graded.filter((g) => g.correct !== g.is_correct);
    const agreement = 1 - disagreements.length / graded.length;
    console.log(
      `    GSM8K agreement ${(agreement * 100).toFixed(2)}% (${graded.length - disagreements.length}/${graded.length}), ` +
        `${disagreements.length} disagreements; graded in ${summary.seconds.toFixed(2)} s ` +
        `(${Math.round(graded.length / summary.seconds)} responses/s), CAS checks ${summary.casCalls}`,
    );
    for (const d of disagreements) {
      const gold = d.answer.slice(d.answer.lastIndexOf('####') + 4).trim();
      console.log(`      line ${d.line} ${d.model}: extracted ${JSON.stringify(d.extracted)} gold ${gold} ours ${d.correct} openai ${d.is_correct}`);
    }
    expect(summary.responses).to.equal(5276);
    expect(agreement).to.be.at.least(REQUIRED_AGREEMENT);
    expect(agreement).to.be.at.least(MEASURED_AGREEMENT);
  });
});
