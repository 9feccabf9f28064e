import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../../src/backend/backend.js';
import { runScore } from '../../src/cli/commands/score.js';
import { RecordError } from '../../src/data/jsonl.js';
import { loadScoringModel, scoreSamples } from '../../src/eval/score.js';
import { encodeSample } from '../../src/model/encode.js';
import { problems, tinyCheckpoint, tinyPrm } from '../support/tiny-prm.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { savePrmCheckpoint } from '../../src/model/checkpoint.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const jsonl = (rows: unknown[]) => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';

describe('prmkit score', () => {
  let checkpoint: string;
  let work: string;

  before(async () => {
    await selectBackend('cpu', { log: () => {} });
    checkpoint = await tinyCheckpoint();
    work = mkdtempSync(join(tmpdir(), 'prmkit-score-cli-'));
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    if (checkpoint) rmSync(dirname(checkpoint), { recursive: true, force: true });
  });

  it('adds step_scores to every line, keeps other fields, and nulls (and counts) lines that are too long', async () => {
    const { model, tokenizer } = await loadScoringModel(checkpoint);
    let expected: (number[] | null)[];
    let lengths: number[];
    try {
      expected = (await scoreSamples(model, tokenizer, problems)).stepScores;
      lengths = problems.map((p) => encodeSample(tokenizer, p).inputIds.length);
    } finally {
      model.dispose();
    }
    const maxLength = Math.max(...lengths) - 1;
    const longest = lengths.indexOf(Math.max(...lengths));
    const input = join(work, 'in.jsonl');
    writeFileSync(input, jsonl([...problems.map((p, i) => ({ id: `s${i}`, ...p, meta: { k: i } })), '', { problem: 'No steps?', steps: [] }]));
    const out = join(work, 'out.jsonl');
    process.env.PRMKIT_NO_PROGRESS = '1';
    let summary;
    try {
      summary = await runScore({ model: checkpoint, input, out, backend: 'cpu', 'max-length': maxLength });
    } finally {
      delete process.env.PRMKIT_NO_PROGRESS;
    }
    const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).to.have.length(problems.length + 1);
    rows.slice(0, problems.length).forEach((row, i) => {
      expect(row).to.include({ id: `s${i}`, problem: problems[i].problem });
      expect(row.meta).to.deep.equal({ k: i });
      if (i === longest) return expect(row.step_scores).to.equal(null);
      const scores = row.step_scores as number[];
      expect(scores).to.have.length(problems[i].steps.length);
      scores.forEach((v, k) => expect(v).to.be.closeTo(expected[i]![k], 1e-6));
    });
    expect(rows.at(-1)!.step_scores).to.deep.equal([]);
    expect(summary.tooLongLines).to.deep.equal([longest + 1]);
    expect(summary.lines).to.equal(problems.length + 1);
  });

  it('rejects a bad line with file:line and the field', async () => {
    const cases: [unknown[], RegExp][] = [
      [[problems[0], { problem: 'p' }], /in-bad\.jsonl:2: field "steps": missing/],
      [[problems[0], problems[1], { problem: 'p', steps: ['a', 3] }], /in-bad\.jsonl:3: field "steps\[1\]": must be a string/],
      [[{ problem: 7, steps: [] }], /in-bad\.jsonl:1: field "problem": must be a string/],
      [[problems[0], '{not json'], /in-bad\.jsonl:2: invalid JSON/],
      [[problems[0], { problem: 'p', steps: ['x <extra_0> y'] }], /in-bad\.jsonl:2: field "steps\[0\]": contains the step token <extra_0>/],
    ];
    for (const [rows, message] of cases) {
      const input = join(work, 'in-bad.jsonl');
      writeFileSync(input, jsonl(rows));
      try {
        await runScore({ model: checkpoint, input, out: join(work, 'never.jsonl'), backend: 'cpu' });
        expect.fail(`should have rejected ${JSON.stringify(rows)}`);
      } catch (e) {
        expect(e).to.be.instanceOf(RecordError);
        expect((e as Error).message).to.match(message);
      }
    }
  });

  it('loads a checkpoint whose tokenizer gained the step token once the embedding grew; refuses a mismatch', async () => {
    const { model, files } = tinyPrm();
    const tok = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson, { stepToken: '<step>' });
    expect(tok.addedStepToken).to.equal(true);
    const grownDir = join(work, 'grown');
    const shortDir = join(work, 'short');
    try {
      await savePrmCheckpoint(model, shortDir, tok.toFiles());
      await loadScoringModel(shortDir).then(
        () => expect.fail('should refuse'),
        (e: Error) => expect(e.message).to.match(new RegExp(`tokenizer has ${tok.vocabSize} ids but the model's embedding only ${tok.vocabSize - 1} rows`)),
      );
      model.resizeTokenEmbeddings(tok.vocabSize, 1);
      model.setTokens({ stepToken: tok.stepToken, stepTokenId: tok.stepTokenId, padTokenId: tok.padTokenId });
      await savePrmCheckpoint(model, grownDir, tok.toFiles());
      const samples = problems.map((p) => ({ problem: p.problem, steps: p.steps }));
      const inMemory = await scoreSamples(model, tok, samples);
      const loaded = await loadScoringModel(grownDir);
      try {
        expect(loaded.tokenizer.stepToken).to.equal('<step>');
        expect(loaded.tokenizer.addedStepToken).to.equal(false);
        expect(loaded.tokenizer.stepTokenId).to.equal(tok.stepTokenId);
        const reloaded = await scoreSamples(loaded.model, loaded.tokenizer, samples);
        expect(reloaded.stepScores).to.deep.equal(inMemory.stepScores);
      } finally {
        loaded.model.dispose();
      }
    } finally {
      model.dispose();
    }
  });

  it('runs as a CLI command: exit 0 with output, 1 on a bad line, 2 on bad usage', async () => {
    const input = join(work, 'cli-in.jsonl');
    const out = join(work, 'cli-out.jsonl');
    writeFileSync(input, jsonl(problems.slice(0, 2)));
    const ok = await runCli(['score', '--model', checkpoint, '--input', input, '--out', out, '--backend', 'cpu', '--batch-tokens', '64']);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stderr).to.match(/wrote .*cli-out\.jsonl: 2 lines, 5 steps scored/);
    const rows = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step_scores: number[] });
    expect(rows.map((r) => r.step_scores.length)).to.deep.equal([3, 2]);

    writeFileSync(input, jsonl([problems[0], { problem: 'p', steps: 'not a list' }]));
    const bad = await runCli(['score', '--model', checkpoint, '--input', input, '--out', out, '--backend', 'cpu']);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/cli-in\.jsonl:2: field "steps": must be an array of strings/);

    const usage = await runCli(['score', '--model', checkpoint, '--input', input, '--out', out, '--batch-tokens', '0']);
    expect(usage.code).to.equal(2);
    expect(usage.stderr).to.match(/--batch-tokens must be a positive integer/);
  });
});
