import { expect } from 'chai';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BadRecordsError, MAX_REPORTED_PROBLEMS, openStepSamples, readAllStepSamples } from '../../src/data/read.js';
import { RecordError } from '../../src/data/jsonl.js';
import { validateStepSample } from '../../src/data/validate.js';
import { writeStepSamples } from '../../src/data/write.js';
import type { StepSample } from '../../src/data/types.js';
import { collect, tempDir, writeJsonlFile } from './support.js';

const good = (id: string, extra: Partial<StepSample> = {}): StepSample => ({ id, problem: 'p', steps: ['a', 'b'], labels: [1, 0], firstError: 1, source: 's', meta: {}, ...extra });

describe('data validation and bad records', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(async () => cleanup());

  it('validateStepSample catches empty steps, count mismatch, labels outside [0,1], first error out of range, wrong types', () => {
    const problems = (s: Partial<StepSample>) => validateStepSample({ ...good('x'), ...s } as StepSample).map((p) => `${p.field}: ${p.reason}`);
    expect(problems({})).to.deep.equal([]);
    expect(problems({ steps: ['a', '  '], labels: [1, 1], firstError: -1 })).to.deep.equal(['steps[1]: empty step']);
    expect(problems({ steps: [], labels: undefined, firstError: undefined })).to.deep.equal(['steps: no steps']);
    expect(problems({ labels: [1] })).to.include('labels: 1 labels for 2 steps');
    expect(problems({ labels: [1, 1.5], firstError: undefined })).to.deep.equal(['labels[1]: label 1.5 outside [0,1]']);
    expect(problems({ labels: [1, -0.1], firstError: undefined })).to.deep.equal(['labels[1]: label -0.1 outside [0,1]']);
    expect(problems({ labels: [1, Number.NaN], firstError: undefined })).to.deep.equal(['labels[1]: expected a number, got NaN']);
    expect(problems({ labels: undefined, firstError: 2 })).to.deep.equal(['firstError: first-error index 2 out of range [-1, 1]']);
    expect(problems({ labels: undefined, firstError: -2 })).to.deep.equal(['firstError: first-error index -2 out of range [-1, 1]']);
    expect(problems({ labels: undefined, firstError: 0.5 })).to.deep.equal(['firstError: expected an integer, got 0.5']);
    expect(problems({ firstError: 0 })).to.deep.equal(['firstError: first-error index 0 disagrees with labels (first 0 label at 1)']);
    expect(problems({ id: '' })).to.deep.equal(['id: expected a non-empty string']);
    expect(problems({ problem: 3 as unknown as string })).to.deep.equal(['problem: expected a string, got number']);
    expect(problems({ steps: ['a', 7 as unknown as string] })).to.include('steps[1]: expected a string, got number');
  });

  it('a bad record fails the read with file:line and field; the first few problems are all reported', async () => {
    const path = await writeJsonlFile(join(dir, 'bad.jsonl'), [
      good('ok1'),
      good('two', { labels: [1, 2] }),
      good('ok3'),
      '{not json',
      good('five', { steps: ['a', ''], labels: [1, 1], firstError: -1 }),
      { ...good('six'), steps: 'one string' },
    ]);
    const { samples, stats } = openStepSamples(path, { format: 'prmkit', onBadRecord: 'fail' });
    const seen: string[] = [];
    let error: unknown;
    try {
      for await (const s of samples) seen.push(s.id);
    } catch (e) {
      error = e;
    }
    expect(seen).to.deep.equal(['ok1']); // nothing after the first bad record is passed on
    expect(error).to.be.instanceOf(BadRecordsError);
    const err = error as BadRecordsError;
    expect(err).to.be.instanceOf(RecordError);
    expect([err.file, err.line, err.field]).to.deep.equal([path, 2, 'labels[1]']);
    expect(err.problems.map((p) => `${p.line} ${p.field ?? '-'}`)).to.deep.equal(['2 labels[1]', '4 -', '5 steps[1]', '6 steps']);
    expect(err.message).to.include(`${path}:2: field "labels[1]": sample two: label 2 outside [0,1]`);
    expect(err.message).to.include(`${path}:4: invalid JSON`);
    expect(err.message).to.include(`${path}:5: field "steps[1]": sample five: empty step`);
    expect(err.message).to.include(`${path}:6: field "steps": expected an array of strings, got string`);
    expect(err.message).to.include('--on-bad-record skip');
    expect(stats.done).to.equal(false);
  });

  it(`stops looking after ${MAX_REPORTED_PROBLEMS} problems`, async () => {
    const records = Array.from({ length: 20 }, (_, i) => good(`b${i}`, { firstError: 5 }));
    const path = await writeJsonlFile(join(dir, 'many-bad.jsonl'), records);
    const err = (await readAllStepSamples(path, { format: 'prmkit' }).catch((e) => e)) as BadRecordsError;
    expect(err.problems).to.have.length(MAX_REPORTED_PROBLEMS);
    expect(err.message).to.match(/^5 bad records \(search stopped after 5; there may be more\)/);
  });

  it('skip mode writes each reject with its location and reason to the side file and counts it', async () => {
    const path = await writeJsonlFile(join(dir, 'mixed.jsonl'), [good('ok1'), good('bad', { labels: [1] }), '[1,2', good('ok2')]);
    const rejectsPath = join(dir, 'mixed.rejects.jsonl');
    const warned: string[] = [];
    const { samples, stats } = openStepSamples(path, { format: 'prmkit', onBadRecord: 'skip', rejectsPath, onReject: (e) => warned.push(e.message) });
    const kept = await collect(samples);
    expect(kept.map((s) => s.id)).to.deep.equal(['ok1', 'ok2']);
    expect(stats).to.deep.include({ records: 4, samples: 2, rejected: 2, rejectsPath, done: true });
    const rejects = (await readFile(rejectsPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(rejects.map((r) => [r.line, r.field])).to.deep.equal([
      [2, 'labels'],
      [3, null],
    ]);
    expect(rejects[0].reason).to.include('1 labels for 2 steps');
    expect(rejects[0].record.id).to.equal('bad');
    expect(rejects[0].file).to.equal(path);
    expect(warned).to.have.length(2);
  });

  it('skip mode without rejects creates no side file', async () => {
    const path = await writeJsonlFile(join(dir, 'clean.jsonl'), [good('a')]);
    const { samples, stats } = openStepSamples(path, { format: 'prmkit', onBadRecord: 'skip' });
    await collect(samples);
    expect(stats.rejected).to.equal(0);
    expect(stats.rejectsPath).to.equal(undefined);
  });

  it('errors in a pretty-printed JSON array name the line the record starts on', async () => {
    const recs = [
      { id: 'gsm8k-0', generator: 'g', problem: 'p {[', steps: ['a', 'b "]}'], final_answer_correct: true, label: -1 },
      { id: 'gsm8k-1', generator: 'g', problem: 'p', steps: ['a'], final_answer_correct: true, label: 3 },
    ];
    const path = join(dir, 'array.json');
    await writeFile(path, JSON.stringify(recs, null, 2));
    const startLine = JSON.stringify(recs, null, 2).split('\n').findIndex((l, i, all) => i > 0 && l === '  {' && all[i + 1].includes('gsm8k-1')) + 1;
    const err = (await readAllStepSamples(path, { format: 'processbench' }).catch((e) => e)) as RecordError;
    expect(err.line).to.equal(startLine);
    expect(err.message).to.include(`${path}:${startLine}: field "firstError": sample gsm8k-1: first-error index 3 out of range [-1, 0]`);
  });

  it('an Arrow file with a bad row is named by row', async () => {
    const path = join(dir, 'rows.arrow');
    await writeStepSamples(path, [good('a'), good('b', { labels: [1, 0.5], firstError: undefined }), good('c', { labels: [0, 1], firstError: 0 })], 'arrow');
    const { samples } = await readAllStepSamples(path, { format: 'prmkit' });
    expect(samples.map((s) => s.id)).to.deep.equal(['a', 'b', 'c']);
    const bad = join(dir, 'rows-bad.arrow');
    // A writer that does not validate (ours does not: validation is the reader's job) can store bad rows.
    await writeStepSamples(bad, [good('a'), good('b', { labels: [1, 3] })], 'arrow');
    const err = (await readAllStepSamples(bad, { format: 'prmkit' }).catch((e) => e)) as RecordError;
    expect(err.message).to.include(`${bad}:row 2: field "labels[1]": sample b: label 3 outside [0,1]`);
  });

  it('an unreadable container is a clear error', async () => {
    const path = join(dir, 'junk.parquet');
    await writeFile(path, 'not parquet at all');
    const err = (await readAllStepSamples(path, { format: 'prmkit' }).catch((e) => e)) as Error;
    expect(err.message).to.match(/junk\.parquet:row 1: cannot read as Parquet/);
    const unknown = join(dir, 'mystery.bin');
    await writeFile(unknown, 'hello');
    const err2 = (await readAllStepSamples(unknown, { format: 'prmkit' }).catch((e) => e)) as Error;
    expect(err2.message).to.include('cannot tell the file type');
  });
});
