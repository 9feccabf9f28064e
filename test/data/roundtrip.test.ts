import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bonCandidateFromRecord, readBonCandidates, writeBonCandidates } from '../../src/data/bon.js';
import type { DataFormat } from '../../src/data/formats.js';
import { readProcessBench, writeProcessBench } from '../../src/data/processbench.js';
import { readAllStepSamples } from '../../src/data/read.js';
import type { StepSample } from '../../src/data/types.js';
import { writeNativeRecords, writeStepSamples, type NativeFormat } from '../../src/data/write.js';
import { collect, needSharedData, tempDir, writeJsonlFile } from './support.js';

const PRM800K_LINE = {
  labeler: 'l',
  timestamp: 't',
  generation: null,
  is_quality_control_question: false,
  is_initial_screening_question: true,
  question: { problem: 'What is 1+1?', ground_truth_answer: '2' },
  label: {
    steps: [
      { completions: [{ text: '1+1 = 2.', rating: 0 }], human_completion: null, chosen_completion: 0 },
      { completions: [{ text: 'Answer: 3', rating: -1 }], human_completion: null, chosen_completion: null },
    ],
    total_time: 5,
    finish_reason: 'found_error',
  },
};

/** One small source file per format (every optional StepSample field used somewhere). */
const SOURCES: Record<DataFormat, unknown[]> = {
  prmkit: [
    { id: 'a', problem: 'p', steps: ['x', 'y'], answer: '3', labels: [1, 0.25], source: 'mc', meta: { k: [1, { z: null }], s: 'é ∑ 😀' } },
    { id: 'b', problem: 'q', steps: ['only'], firstError: -1, source: 'judge', meta: {} },
  ],
  processbench: [
    { id: 'olympiadbench-3', generator: 'G', problem: 'P', steps: ['s1', 's2'], final_answer_correct: true, label: -1 },
    { id: 'custom', generator: null, problem: 'P2', steps: ['t'], final_answer_correct: null, label: 0, note: 'kept' },
  ],
  prm800k: [PRM800K_LINE],
  'math-shepherd': [
    { input: 'Q? Step 1: a ки\nStep 2: b ки', label: 'Q? Step 1: a +\nStep 2: b -', task: 'MATH' },
    { input: 'R? Step 1: c ки', label: 'R? Step 1: c +', task: 'GSM8K' },
  ],
  trl: [
    { prompt: 'P', completions: ['a', 'b'], labels: [true, false], origin: 'x' },
    { prompt: 'Q', completions: ['c'], labels: [0.375] },
  ],
  bon: [{ idx: 3, question: 'Q', gt: '4', code: ['a\n\nb', 'c'], scores: [0.5, [0.25, 0.75]] }],
  gsm8k: [{ question: 'Q', answer: 'a = <<1+1=2>>2\nb = 3\n#### 3' }],
};

const NATIVE: NativeFormat[] = ['processbench', 'trl', 'math-shepherd', 'gsm8k'];

describe('data round trips (read -> write -> read keeps every field)', function () {
  this.timeout(60_000);
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(async () => cleanup());

  for (const [format, records] of Object.entries(SOURCES) as [DataFormat, unknown[]][]) {
    it(`${format} -> prmkit JSONL and Arrow -> identical StepSamples`, async () => {
      const src = await writeJsonlFile(join(dir, `${format}.jsonl`), records);
      const { samples } = await readAllStepSamples(src, { format });
      expect(samples.length).to.be.greaterThan(0);
      for (const to of ['jsonl', 'arrow'] as const) {
        const out = join(dir, `${format}.out.${to}`);
        expect(await writeStepSamples(out, samples, to)).to.equal(samples.length);
        const { samples: back } = await readAllStepSamples(out, { format: 'prmkit' });
        expect(back, `${format} via ${to}`).to.deep.equal(samples);
      }
    });
  }

  for (const format of NATIVE) {
    it(`${format} -> native ${format} -> identical StepSamples`, async () => {
      const src = await writeJsonlFile(join(dir, `${format}.native-src.jsonl`), SOURCES[format]);
      const { samples } = await readAllStepSamples(src, { format });
      const out = join(dir, `${format}.native-out.jsonl`);
      await writeNativeRecords(out, samples, format);
      const { samples: back } = await readAllStepSamples(out, { format });
      // GSM8K ids carry the file stem and PRM-less native formats the line: compare the rest.
      const strip = (s: StepSample[]) => (format === 'gsm8k' ? s.map(({ id: _id, ...rest }) => rest) : s);
      expect(strip(back)).to.deep.equal(strip(samples));
    });
  }

  it('native re-export reproduces the original TRL and Math-Shepherd records (TRL gains an id column)', async () => {
    for (const format of ['trl', 'math-shepherd'] as const) {
      const src = await writeJsonlFile(join(dir, `${format}.orig.jsonl`), SOURCES[format]);
      const { samples } = await readAllStepSamples(src, { format });
      const out = join(dir, `${format}.reexport.jsonl`);
      await writeNativeRecords(out, samples, format);
      const written = (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      written.forEach((rec, i) => {
        const { id, ...rest } = rec;
        expect(rest, format).to.deep.equal(SOURCES[format][i]);
        expect(id).to.equal(samples[i].id);
      });
    }
  });

  it('BoN candidates: writeBonCandidates -> readBonCandidates keeps id, problem, answer, responses, scores, meta', async () => {
    const path = await writeJsonlFile(join(dir, 'bon-src.jsonl'), [
      ...SOURCES.bon,
      { question: 'MC?', choices: ['x', 'y'], answer: 1, type: 'physics' },
      { problem: 'G', answer: 'w\n#### 12', meta: { models: ['m'], is_correct: [true] }, responses: ['r'] },
    ]);
    const first = await collect(readBonCandidates(path));
    const out = join(dir, 'bon-out.jsonl');
    await writeBonCandidates(out, first);
    const second = await collect(readBonCandidates(out));
    const core = (c: (typeof first)[number]) => ({ id: c.id, problem: c.problem, answer: c.answer, responses: c.responses, scores: c.scores, meta: c.meta });
    expect(second.map(core)).to.deep.equal(first.map(core));
    expect(second[1].raw.type).to.equal('physics');
    expect(second[1].problem).to.equal('MC?\nAnswer Choices: (A) x (B) y');
    expect(bonCandidateFromRecord(second[1].raw, { file: out, line: 2, unit: 'line' }).problem).to.equal(second[1].problem);
  });

  it('real ProcessBench (3,400): Arrow and JSONL round trips, and native JSON re-export gives back the original records', async function () {
    const pbDir = needSharedData(this, 'processbench');
    const samples = await readProcessBench(pbDir);
    for (const to of ['jsonl', 'arrow'] as const) {
      const out = join(dir, `pb-all.${to}`);
      await writeStepSamples(out, samples, to);
      const { samples: back } = await readAllStepSamples(out, { format: 'prmkit' });
      expect(back, to).to.deep.equal(samples);
    }
    const native = join(dir, 'pb-native.json');
    await writeProcessBench(native, samples.filter((s) => s.meta.subset === 'math'));
    const original = JSON.parse(await readFile(join(pbDir, 'math.json'), 'utf8')) as unknown[];
    const rewritten = JSON.parse(await readFile(native, 'utf8')) as unknown[];
    expect(rewritten).to.deep.equal(original);
    expect(await readProcessBench(native)).to.deep.equal(samples.filter((s) => s.meta.subset === 'math'));
  });

  it('our Arrow files open in pyarrow (the reference reader) with the same rows', async function () {
    const src = await writeJsonlFile(join(dir, 'interop.jsonl'), SOURCES.prmkit);
    const { samples } = await readAllStepSamples(src, { format: 'prmkit' });
    const results: Record<string, unknown> = {};
    for (const ext of ['arrow', 'arrows']) {
      const out = join(dir, `interop.${ext}`);
      await writeStepSamples(out, samples, 'arrow');
      const reader = ext === 'arrow' ? 'pa.ipc.open_file' : 'pa.ipc.open_stream';
      const py = spawnSync('python3', ['-c', `import json, sys, pyarrow as pa\nt = ${reader}(sys.argv[1]).read_all()\nprint(json.dumps(t.to_pylist()))`, out], { encoding: 'utf8' });
      if (py.error || (py.status !== 0 && /No module named/.test(py.stderr))) {
        console.warn('      (skipped: python3 with pyarrow is not available)');
        this.skip();
      }
      expect(py.status, py.stderr).to.equal(0);
      results[ext] = JSON.parse(py.stdout);
    }
    const expected = samples.map((s) => ({
      id: s.id,
      problem: s.problem,
      steps: s.steps,
      answer: s.answer ?? null,
      labels: s.labels ?? null,
      firstError: s.firstError ?? null,
      source: s.source,
      meta: JSON.stringify(s.meta),
    }));
    expect(results.arrow).to.deep.equal(expected);
    expect(results.arrows).to.deep.equal(expected);
  });
});
