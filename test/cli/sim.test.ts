import { expect } from 'chai';
import { runCli } from '../support/cli.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBonCandidates } from '../../src/data/bon.js';
import { readAllStepSamples } from '../../src/data/read.js';
import { readProcessBench } from '../../src/data/processbench.js';


const cli = runCli;

describe('prmkit sim generate', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'prmkit-simgen-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes problems, truth-labelled solutions and the step-error and Best-of-N sets, all readable by prmkit', async () => {
    const out = join(dir, 'a');
    const run = await cli(['sim', 'generate', '--problems', '40', '--seed', '7', '--responses-per-problem', '2', '--bon-n', '4', '--out', out]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/40 problems, 80 policy solutions; \d+ \([\d.]+%\) with a process error/);

    const problems = await readAllStepSamples(join(out, 'problems.jsonl'), { format: 'prmkit' });
    expect(problems.samples).to.have.length(40);
    expect(problems.samples.every((s) => s.firstError === -1 && s.answer !== undefined)).to.equal(true);
    const solutions = await readAllStepSamples(join(out, 'solutions.jsonl'), { format: 'prmkit' });
    expect(solutions.samples).to.have.length(80);
    for (const s of solutions.samples) expect(s.firstError).to.equal((s.meta.truth as { firstError: number }).firstError);

    const bench = await readProcessBench(join(out, 'processbench'));
    expect(bench).to.have.length(40);
    expect(bench.filter((s) => s.firstError === -1)).to.have.length(20);
    expect(new Set(bench.map((s) => s.meta.subset))).to.deep.equal(new Set(['sim']));

    const bon = [];
    for await (const c of readBonCandidates(join(out, 'bon', 'sim.jsonl'))) bon.push(c);
    expect(bon).to.have.length(40);
    expect(bon.every((c) => c.responses.length === 4)).to.equal(true);

    // Same seed, same bytes.
    const again = await cli(['sim', 'generate', '--problems', '40', '--seed', '7', '--responses-per-problem', '2', '--bon-n', '4', '--out', join(dir, 'b')]);
    expect(again.code).to.equal(0);
    for (const f of ['problems.jsonl', 'solutions.jsonl', 'processbench/sim.jsonl', 'bon/sim.jsonl']) {
      expect(await readFile(join(dir, 'b', f), 'utf8'), f).to.equal(await readFile(join(out, f), 'utf8'));
    }
  });

  it('rejects bad knobs with exit code 2', async () => {
    const run = await cli(['sim', 'generate', '--problems', '5', '--ops', '+,^', '--out', join(dir, 'c')]);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.match(/--ops: unknown operation "\^"/);
  });
});
