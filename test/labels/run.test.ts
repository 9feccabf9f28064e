import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countJsonlLines, mapOrdered } from '../../src/labels/run.js';
import { computeLabelStats } from '../../src/labels/stats.js';
import { Rng } from '../../src/util/rng.js';

async function* numbers(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) yield i;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('labeling helpers', () => {
  it('mapOrdered runs up to `window` at once and hands results over in input order', async () => {
    const rng = new Rng(1);
    const delays = Array.from({ length: 60 }, () => rng.int(0, 8));
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    await mapOrdered(
      numbers(60),
      5,
      async (i) => {
        running++;
        peak = Math.max(peak, running);
        await sleep(delays[i]);
        running--;
        return i * 10;
      },
      async (result, item) => {
        expect(result).to.equal(item * 10);
        seen.push(item);
      },
    );
    expect(seen).to.deep.equal(Array.from({ length: 60 }, (_, i) => i));
    expect(peak).to.equal(5);
  });

  it('mapOrdered stops on a failure once the work in flight has settled', async () => {
    const started: number[] = [];
    const settled: number[] = [];
    let error: Error | undefined;
    await mapOrdered(
      numbers(20),
      4,
      async (i) => {
        started.push(i);
        await sleep(i === 2 ? 1 : 10);
        settled.push(i);
        if (i === 2) throw new Error('boom');
        return i;
      },
      async () => {},
    ).catch((e: Error) => (error = e));
    expect(error?.message).to.equal('boom');
    expect(started.length).to.be.lessThan(10);
    expect([...settled].sort((a, b) => a - b)).to.deep.equal(started);
  });

  it('counts non-blank JSONL lines without parsing them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'prmkit-count-'));
    try {
      await writeFile(join(dir, 'a.jsonl'), '{"a":1}\n\n  \n{"a":2}\r\n{"a":3}');
      expect(await countJsonlLines(join(dir, 'a.jsonl'))).to.equal(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('computes first-error precision, recall and agreement against the truth', () => {
    const truth = (firstError: number, errorKind: string | null) => ({ truth: { firstError, errorKind } });
    const q = computeLabelStats([
      { firstError: 1, meta: truth(1, 'arithmetic') }, // hit
      { firstError: 2, meta: truth(1, 'arithmetic') }, // late
      { firstError: -1, meta: truth(0, 'skipped_step') }, // missed
      { firstError: 0, meta: truth(-1, null) }, // false alarm
      { firstError: -1, meta: truth(-1, null) }, // right "none"
      { firstError: undefined, meta: truth(-1, null) }, // unlabelled: not counted
    ]);
    expect(q).to.include({ samples: 6, labelled: 5 });
    const t = q.truth!;
    expect(t).to.include({ n: 5, predictedErrors: 3, trueErrors: 3, hits: 1, precision: 1 / 3, recall: 1 / 3, accuracy: 2 / 5, accError: 1 / 3, accCorrect: 1 / 2 });
    expect(t.byKind.arithmetic).to.deep.equal({ n: 2, accuracy: 0.5, missed: 0, late: 0.5, early: 0 });
    expect(t.byKind.skipped_step.missed).to.equal(1);
    expect(t.byKind.none).to.deep.equal({ n: 2, accuracy: 0.5, missed: 0, late: 0, early: 0.5 });
    expect(q.positions).to.deep.equal({ none: 2, '0': 1, '1': 1, '2': 1 });
    expect(q.agreementWithTruth!.byPosition['1']).to.deep.equal({ a: 1, b: 2, agree: 1 });
  });
});
