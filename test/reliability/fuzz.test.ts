/**
 * Fuzz suite: every command that reads data gets a seeded corpus of malformed inputs (see
 * corpus.ts) through the real CLI. A bad record must end in exit 1 or 2 with a message naming
 * file:line, no stack trace and no unhandled rejection, and leave the outputs as they were (no
 * partial or temporary file); inputs that are only unusual (BOM, CRLF, duplicate lines where ids
 * do not matter) must be accepted. An output that is its input (by name, symlink or hard link)
 * is refused with exit 2 before anything is written.
 *
 * PRMKIT_FUZZ_SEED picks another corpus (the seed is in the suite's title).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../../src/backend/backend.js';
import { Rng } from '../../src/util/rng.js';
import { tinyCheckpoint } from '../support/tiny-prm.js';
import { FUZZ_MAX_LINE_BYTES, KINDS, MARK, malform, words, type Kind } from './corpus.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const SEED = Number(process.env.PRMKIT_FUZZ_SEED ?? 18);
const SENTINEL = 'an earlier output that a failed command must leave as it was\n';
const PARALLEL = 4;
const PB_SAMPLES = 6;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function prmkit(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, PRMKIT_NO_PROGRESS: '1', PRMKIT_MAX_LINE_BYTES: String(FUZZ_MAX_LINE_BYTES) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Files left under dir whose names mark them as temporary (an atomic write that was not cleaned up). */
function tempFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => /(^|\/)\.[^/]*\.tmp$|\.partial$/.test(name));
}

type Expect = 'ok' | 'error';

interface CommandSpec {
  name: string;
  /** A valid input record holding MARK once. */
  record(rng: Rng, i: number): Record<string, unknown>;
  /** The CLI arguments for an input file, writing under dir; outputs are the files it writes. */
  args(input: string, dir: string): { args: string[]; outputs: string[] };
  /** What each kind of corpus must give; kinds left out are not run for this command. */
  expect: Partial<Record<Kind, Expect>>;
  /** Records per corpus when the command needs an exact number (default 3 to 7). */
  records?: number;
}

const READ_ERRORS: Partial<Record<Kind, Expect>> = { truncated: 'error', 'invalid-utf8': 'error', deep: 'error', huge: 'error', nan: 'error' };

function stepSample(rng: Rng, i: number): Record<string, unknown> {
  const n = rng.int(1, 4);
  const steps = Array.from({ length: n }, (_, k) => `${words(rng, rng.int(2, 6))}${k === 0 ? ` ${MARK}` : ''}.`);
  const firstError = rng.int(-1, n - 1);
  return { id: `s${i}`, problem: `${words(rng, 6)}?`, steps, labels: steps.map((_, k) => (firstError === -1 || k < firstError ? 1 : 0)), firstError, source: 'fuzz', meta: { seed: SEED } };
}

let checkpoint = '';
let pbData = '';
let judgeFile = '';

const COMMANDS: CommandSpec[] = [
  {
    name: 'data convert --to jsonl',
    record: stepSample,
    args: (input, dir) => ({ args: ['data', 'convert', '--from', 'prmkit', '--to', 'jsonl', input, join(dir, 'out.jsonl')], outputs: [join(dir, 'out.jsonl')] }),
    expect: { ...READ_ERRORS, 'big-number': 'error', bom: 'ok', crlf: 'ok', 'dup-id': 'ok', 'step-token': 'ok' },
  },
  {
    name: 'data convert --to arrow',
    record: stepSample,
    args: (input, dir) => ({ args: ['data', 'convert', '--from', 'prmkit', '--to', 'arrow', input, join(dir, 'out.arrow')], outputs: [join(dir, 'out.arrow')] }),
    expect: { ...READ_ERRORS, 'big-number': 'error', bom: 'ok', crlf: 'ok' },
  },
  {
    name: 'data stats',
    record: stepSample,
    // No --format: the format is detected, which must see through a BOM.
    args: (input) => ({ args: ['data', 'stats', input], outputs: [] }),
    expect: { ...READ_ERRORS, 'big-number': 'error', bom: 'ok', crlf: 'ok', 'dup-id': 'ok' },
  },
  {
    name: 'grade',
    record: (rng) => {
      const a = rng.int(1, 99);
      return { problem: words(rng, 5), response: `${words(rng, 4)} ${MARK}. The answer is \\boxed{${a}}`, answer: String(rng.bernoulli(0.5) ? a : a + 1) };
    },
    args: (input, dir) => ({ args: ['grade', '--input', input, '--out', join(dir, 'graded.jsonl')], outputs: [join(dir, 'graded.jsonl')] }),
    expect: { ...READ_ERRORS, 'big-number': 'ok', bom: 'ok', crlf: 'ok', 'dup-id': 'ok', 'step-token': 'ok' },
  },
  {
    name: 'score',
    record: (rng, i) => ({ id: i, problem: `${words(rng, 6)}?`, steps: [`${words(rng, 4)} ${MARK}.`, `${words(rng, 3)}.`] }),
    args: (input, dir) => ({ args: ['score', '--model', checkpoint, '--backend', 'cpu', '--input', input, '--out', join(dir, 'scored.jsonl')], outputs: [join(dir, 'scored.jsonl')] }),
    expect: { ...READ_ERRORS, 'big-number': 'ok', bom: 'ok', crlf: 'ok', 'step-token': 'error' },
  },
  {
    name: 'eval processbench --scores',
    record: (rng, i) => ({ id: `gsm8k-${i}`, step_scores: [rng.next(), rng.next()], note: MARK }),
    args: (input, dir) => ({
      args: ['eval', 'processbench', '--data', pbData, '--scores', input, '--out', join(dir, 'pb')],
      outputs: [join(dir, 'pb', 'metrics.json'), join(dir, 'pb', 'predictions.jsonl')],
    }),
    expect: { ...READ_ERRORS, bom: 'ok', crlf: 'ok', 'dup-id': 'error' },
    // One score line per sample of the benchmark file written in before().
    records: PB_SAMPLES,
  },
  {
    name: 'eval bon',
    record: (rng, i) => ({ idx: i, problem: words(rng, 6), answer: '7', responses: [`${words(rng, 3)} ${MARK} \\boxed{7}`, `${words(rng, 3)} \\boxed{8}`], scores: [rng.next(), rng.next()] }),
    args: (input, dir) => ({
      args: ['eval', 'bon', '--candidates', input, '--scores-field', 'scores', '--n', '2', '--bootstrap', '0', '--out', join(dir, 'bon')],
      outputs: [join(dir, 'bon', 'metrics.json'), join(dir, 'bon', 'graded.jsonl')],
    }),
    expect: { ...READ_ERRORS, 'big-number': 'error', bom: 'ok', crlf: 'ok', 'dup-id': 'error', 'step-token': 'ok' },
  },
  {
    name: 'label consensus',
    record: stepSample,
    args: (input, dir) => ({
      args: ['label', 'consensus', '--mc', input, '--judge', judgeFile, '--out', join(dir, 'kept.jsonl'), '--dropped', join(dir, 'dropped.jsonl')],
      outputs: [join(dir, 'kept.jsonl'), join(dir, 'dropped.jsonl'), join(dir, 'kept.stats.json')],
    }),
    expect: { ...READ_ERRORS, 'big-number': 'error', bom: 'ok', crlf: 'ok' },
  },
  {
    // Reading fails before any request is answered (the endpoint is a closed port).
    name: 'label judge',
    record: stepSample,
    args: (input, dir) => ({
      args: ['label', 'judge', '--input', input, '--format', 'prmkit', '--endpoint', 'http://127.0.0.1:9', '--model', 'm', '--retries', '0', '--out', join(dir, 'judged.jsonl')],
      outputs: [join(dir, 'judged.jsonl'), join(dir, 'judged.stats.json')],
    }),
    expect: { ...READ_ERRORS, 'big-number': 'error' },
  },
];

interface Case {
  command: CommandSpec;
  kind: Kind;
  expect: Expect;
  dir: string;
  input: string;
  badLine: number;
  outputs: string[];
  run?: Run;
}

interface SameFileCase {
  command: CommandSpec;
  how: 'same name' | 'symlink' | 'hard link';
  input: string;
  dir: string;
  before: Buffer;
  run?: Run;
}

async function runAll<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

describe(`reliability: fuzzed inputs through every data-reading command (seed ${SEED})`, function () {
  this.timeout(240_000);
  const root = mkdtempSync(join(tmpdir(), 'prmkit-fuzz-'));
  const rng = new Rng(SEED);
  const cases: Case[] = [];
  const sameFile: SameFileCase[] = [];

  for (const command of COMMANDS) {
    for (const kind of KINDS) {
      const expected = command.expect[kind];
      if (expected === undefined) continue;
      const r = rng.fork(`${command.name}/${kind}`);
      const dir = join(root, `${cases.length}`);
      mkdirSync(dir);
      const lines = Array.from({ length: command.records ?? r.int(3, 7) }, (_, i) => JSON.stringify(command.record(r, i)));
      const corpus = malform(kind, lines, r);
      const input = join(dir, 'input.jsonl');
      writeFileSync(input, corpus.bytes);
      cases.push({ command, kind, expect: expected, dir, input, badLine: corpus.badLine, outputs: [] });
    }
  }
  // Output over input, one way or another, for every command that writes an output.
  for (const [k, command] of COMMANDS.entries()) {
    const r = rng.fork(`${command.name}/same-file`);
    const dir = join(root, `same-${k}`);
    mkdirSync(dir);
    const natural = join(dir, 'input.jsonl');
    const target = command.args(natural, dir).outputs[0];
    if (target === undefined) continue;
    mkdirSync(join(target, '..'), { recursive: true });
    const how = (['same name', 'symlink', 'hard link'] as const)[r.int(0, 2)];
    // Same name: the input sits where the first output goes; otherwise the output is a link to it.
    const input = how === 'same name' ? target : natural;
    writeFileSync(input, `${Array.from({ length: 3 }, (_, i) => JSON.stringify(command.record(r, i))).join('\n')}\n`);
    if (how === 'symlink') symlinkSync(input, target);
    if (how === 'hard link') linkSync(input, target);
    sameFile.push({ command, how, input, dir, before: readFileSync(input) });
  }

  before(async function () {
    await selectBackend('cpu', { log: () => {} });
    checkpoint = await tinyCheckpoint();
    pbData = join(root, 'pb-data');
    mkdirSync(pbData);
    writeFileSync(
      join(pbData, 'gsm8k.json'),
      JSON.stringify(Array.from({ length: PB_SAMPLES }, (_, i) => ({ id: `gsm8k-${i}`, problem: 'p', steps: ['a', 'b'], label: i % 3 === 0 ? 1 : -1, final_answer_correct: true }))),
    );
    judgeFile = join(root, 'judge.jsonl');
    const jr = new Rng(SEED + 1);
    writeFileSync(judgeFile, `${Array.from({ length: 9 }, (_, i) => JSON.stringify(stepSample(jr, i))).join('\n')}\n`);
    await runAll(cases, async (c) => {
      const { args, outputs } = c.command.args(c.input, c.dir);
      c.outputs = outputs;
      for (const out of outputs) {
        mkdirSync(join(out, '..'), { recursive: true });
        writeFileSync(out, SENTINEL);
      }
      c.run = await prmkit(args);
    });
    // Arguments made now, not at collection: the checkpoint exists only once `before` has made it.
    await runAll(sameFile, async (c) => {
      c.run = await prmkit(c.command.args(c.input, c.dir).args);
    });
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  for (const c of cases) {
    it(`${c.command.name}: ${c.kind} -> ${c.expect === 'ok' ? 'accepted' : `error at line ${c.badLine || 'n'}`}`, () => {
      const run = c.run!;
      const log = `exit ${run.code}\n${run.stderr.slice(0, 2000)}`;
      expect(run.stderr, log).not.to.match(/^\s+at /m);
      expect(run.stderr, log).not.to.match(/Unhandled|node:internal|Maximum call stack/);
      expect(tempFiles(c.dir), 'temporary files left behind').to.deep.equal([]);
      if (c.expect === 'ok') {
        expect(run.code, log).to.equal(0);
        for (const out of c.outputs) expect(readFileSync(out, 'utf8'), `${out} replaced`).not.to.equal(SENTINEL);
        // Numbers nobody touched pass through as written.
        if (c.kind === 'big-number') expect(readFileSync(c.outputs[0], 'utf8')).to.include('"big":1e999');
        return;
      }
      expect(run.code, log).to.be.oneOf([1, 2]);
      expect(run.stderr, log).to.include(`${c.input}:${c.badLine}:`);
      for (const out of c.outputs) expect(readFileSync(out, 'utf8'), `${out} untouched`).to.equal(SENTINEL);
    });
  }

  for (const c of sameFile) {
    it(`${c.command.name}: output is the input (${c.how}) -> exit 2, input kept`, () => {
      const run = c.run!;
      expect(run.code, run.stderr).to.equal(2);
      expect(run.stderr).to.match(/is the input/);
      expect(readFileSync(c.input).equals(c.before), 'input unchanged').to.equal(true);
    });
  }
});
