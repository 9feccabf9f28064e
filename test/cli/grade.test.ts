import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonlAll, RecordError } from '../../src/data/jsonl.js';
import { gradeFile } from '../../src/math/grade-file.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

describe('prmkit grade', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'prmkit-grade-cmd-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function write(name: string, lines: unknown[]): string {
    const path = join(dir, name);
    writeFileSync(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
    return path;
  }

  it('adds extracted and correct, finding the usual field names and reading #### / boxed golds', async () => {
    const input = write('mixed.jsonl', [
      { question: 'q1', response: 'so \\boxed{18}', answer: 'She makes 9 * 2 = 18.\n#### 18' },
      { problem: 'q2', responses: ['The answer is $\\frac{1}{2}$.', 'A: 0.4', 'nothing'], gt: '0.5' },
      { question: 'q3', code: ['\\boxed{(1,2)}'], final_answer: ['$(1,2)$'] },
    ]);
    const out = join(dir, 'mixed.out.jsonl');
    const s = await gradeFile({ input, out, progress: false });
    const rows = (await readJsonlAll(out)).map((l) => l.value as Record<string, unknown>);
    expect(rows[0]).to.include({ question: 'q1', extracted: '18', correct: true });
    expect(rows[1].extracted).to.deep.equal(['\\frac{1}{2}', '0.4', null]);
    expect(rows[1].correct).to.deep.equal([true, false, false]);
    expect(rows[2].correct).to.deep.equal([true]);
    expect(s).to.include({ records: 3, responses: 5, correct: 3, noAnswer: 1, badRecords: 0 });
  });

  it('grades multiple choice with a 0-based gold index and the option texts', async () => {
    const input = write('mmlu.jsonl', [
      { question: 'q', choices: ['red', 'green', 'blue', 'grey'], answer: 2, response: 'The answer is (C).' },
      { question: 'q', choices: ['red', 'green', 'blue', 'grey'], answer: 1, response: '\\boxed{blue}' },
    ]);
    const out = join(dir, 'mmlu.out.jsonl');
    await gradeFile({ input, out, choices: true, progress: false });
    const rows = (await readJsonlAll(out)).map((l) => l.value as Record<string, unknown>);
    expect(rows.map((r) => [r.extracted, r.correct])).to.deep.equal([
      ['C', true],
      ['C', false],
    ]);
  });

  it('names file:line and field for a bad line, or skips and counts bad lines', async () => {
    const input = write('bad.jsonl', [
      { response: '\\boxed{1}', answer: '1' },
      { response: 42, answer: '1' },
      '{not json',
      { response: 'x', other: 1 },
      [1, 2],
    ]);
    const out = join(dir, 'bad.out.jsonl');
    let caught: unknown;
    try {
      await gradeFile({ input, out, progress: false });
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(RecordError);
    expect((caught as RecordError).message).to.equal(`${input}:2: field "response": must be a string or an array of strings`);

    const rejected: string[] = [];
    const s = await gradeFile({ input, out, onBadRecord: 'skip', onReject: (e) => rejected.push(e.message), progress: false });
    expect(s).to.include({ records: 1, badRecords: 4, correct: 1 });
    expect(rejected[0]).to.match(/bad\.jsonl:2: field "response"/);
    expect(rejected[1]).to.match(/bad\.jsonl:3: invalid JSON/);
    expect(rejected[2]).to.match(/bad\.jsonl:4: field "answer": no gold answer field/);
    expect(rejected[3]).to.match(/bad\.jsonl:5: a line must be a JSON object/);
    expect((await readJsonlAll(out)).length).to.equal(1);
  });

  it('runs from the command line: prints counts, exit 1 on a bad line, exit 2 on bad usage', () => {
    const input = write('cli.jsonl', [
      { sample: { text: 'The answer is 7.' }, gold: 7 },
      { sample: { text: 'The answer is 8.' }, gold: 7 },
    ]);
    const out = join(dir, 'cli.out.jsonl');
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, PRMKIT_NO_PROGRESS: '1' } });
    const ok = run(['grade', '--input', input, '--response-field', 'sample.text', '--out', out]);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/graded 2 responses in 2 records: 1 correct \(50\.00%\)/);
    expect(readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l).correct)).to.deep.equal([true, false]);

    const bad = write('cli-bad.jsonl', [{ response: 'x' }]);
    const failed = run(['grade', '--input', bad, '--out', join(dir, 'cli-bad.out.jsonl')]);
    expect(failed.status).to.equal(1);
    expect(failed.stderr).to.include(`${bad}:1: field "answer"`);

    expect(run(['grade', '--input', input]).status).to.equal(2);
    expect(run(['grade', '--input', input, '--out', out, '--timeout-ms', '0']).status).to.equal(2);
  });
});
