import { expect } from 'chai';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAllStepSamples } from '../../src/data/read.js';
import { detectFileKind, readRecords } from '../../src/data/sources.js';
import { collect, FIXTURES } from './support.js';

/** Files written by pyarrow (scripts/fixtures/make_parquet_fixtures.py) next to the same rows as JSON. */
const CASES = [
  { file: 'processbench.parquet', expected: 'processbench.expected.json', codec: 'snappy, 3 row groups' },
  { file: 'trl_bool.parquet', expected: 'trl_bool.expected.json', codec: 'uncompressed, 3 row groups' },
  { file: 'trl_float.parquet', expected: 'trl_float.expected.json', codec: 'gzip' },
  { file: 'trl_float_zstd.parquet', expected: 'trl_float.expected.json', codec: 'zstd, 3 row groups' },
  { file: 'prmkit.parquet', expected: 'prmkit.expected.json', codec: 'snappy, 2 row groups' },
  { file: 'trl_bool.feather', expected: 'trl_bool.expected.json', codec: 'Arrow IPC file (Feather v2)' },
];

const expectedRows = async (name: string) => JSON.parse(await readFile(join(FIXTURES, name), 'utf8')) as Record<string, unknown>[];

describe('data: Parquet and Arrow written by pyarrow', () => {
  for (const c of CASES) {
    it(`${c.file} (${c.codec}) reads back the rows pyarrow wrote, numbered by row`, async () => {
      const rows = await collect(readRecords(join(FIXTURES, c.file)));
      expect(rows.map((r) => r.value)).to.deep.equal(await expectedRows(c.expected));
      expect(rows.map((r) => r.line)).to.deep.equal(rows.map((_, i) => i + 1));
      expect(rows.every((r) => r.unit === 'row')).to.equal(true);
    });
  }

  it('ProcessBench Parquet -> StepSamples', async () => {
    const { samples } = await readAllStepSamples(join(FIXTURES, 'processbench.parquet'), { format: 'processbench' });
    const rows = await expectedRows('processbench.expected.json');
    expect(samples).to.have.length(7);
    samples.forEach((s, i) => {
      expect(s).to.deep.include({ id: rows[i].id, problem: rows[i].problem, steps: rows[i].steps, firstError: rows[i].label });
      expect(s.meta).to.deep.equal({ subset: 'math', generator: rows[i].generator, final_answer_correct: rows[i].final_answer_correct });
    });
  });

  it('TRL Parquet: boolean labels become 0/1, float labels stay floats', async () => {
    const { samples: bools } = await readAllStepSamples(join(FIXTURES, 'trl_bool.parquet'), { format: 'trl' });
    expect(bools[1].labels).to.deep.equal([1, 0, 0]);
    expect(bools[1].firstError).to.equal(1);
    const { samples: floats } = await readAllStepSamples(join(FIXTURES, 'trl_float_zstd.parquet'), { format: 'trl' });
    expect(floats.map((s) => s.labels![1])).to.deep.equal([0, 0.125, 0.25, 0.375, 0.5]);
    expect(floats[0].meta.label_type).to.equal('float');
  });

  it('prmkit Parquet (meta as a JSON string column) -> StepSamples', async () => {
    const { samples } = await readAllStepSamples(join(FIXTURES, 'prmkit.parquet'), { format: 'prmkit' });
    expect(samples[3]).to.deep.equal({
      id: 's3',
      problem: 'Problem 3: what is 2^3?',
      steps: ['2^3 doubles 1 3 times.', 'That gives 8.'],
      answer: '8',
      labels: [1, 0],
      firstError: 1,
      source: 'synthetic',
      meta: { k: 3, tags: [] },
    });
  });

  it('a bad row in a Parquet file is named by row', async () => {
    // TRL rows read as ProcessBench: the first row already lacks the "id" ProcessBench needs.
    const err = await readAllStepSamples(join(FIXTURES, 'trl_bool.parquet'), { format: 'processbench' }).catch((e: Error) => e);
    expect((err as Error).message).to.match(/trl_bool\.parquet:row 1: field "id": missing/);
  });

  it('detects the container from the first bytes when the name says nothing', async () => {
    const base = join(tmpdir(), `prmkit-magic-${process.pid}`);
    await copyFile(join(FIXTURES, 'prmkit.parquet'), `${base}-pq`);
    await copyFile(join(FIXTURES, 'trl_bool.feather'), `${base}-ipc`);
    await writeFile(`${base}-arr`, '\uFEFF  [\n{"a": 1}]');
    await writeFile(`${base}-lines`, '{"a": 1}\n{"a": 2}\n');
    expect(await detectFileKind(`${base}-pq`)).to.equal('parquet');
    expect(await detectFileKind(`${base}-ipc`)).to.equal('arrow');
    expect(await detectFileKind(`${base}-arr`)).to.equal('json');
    expect(await detectFileKind(`${base}-lines`)).to.equal('jsonl');
    expect((await collect(readRecords(`${base}-ipc`))).length).to.equal(5);
    expect((await collect(readRecords(`${base}-arr`))).map((r) => r.value)).to.deep.equal([{ a: 1 }]);
    const { rm } = await import('node:fs/promises');
    for (const suffix of ['-pq', '-ipc', '-arr', '-lines']) await rm(`${base}${suffix}`, { force: true });
  });
});
