import { expect } from 'chai';
import type { EncodedSample } from '../../src/model/encode.js';
import { DynamicBatcher, QueueFullError, type BatchInfo } from '../../src/serve/batcher.js';
import { Gate } from './helpers.js';

/** A row of `length` tokens whose one "score" is its tag, so answers can be traced to rows. */
function row(length: number, tag: number): EncodedSample {
  const inputIds = new Array<number>(length).fill(1);
  inputIds[0] = tag;
  return { inputIds, stepPositions: [length - 1], nSteps: 1 };
}

/** A fake forward pass: records each batch and answers every row with [its tag]. */
function recorder() {
  const passes: { lengths: number[]; tags: number[] }[] = [];
  const forward = async (rows: readonly EncodedSample[]): Promise<number[][]> => {
    passes.push({ lengths: rows.map((r) => r.inputIds.length), tags: rows.map((r) => r.inputIds[0]) });
    return rows.map((r) => [r.inputIds[0]]);
  };
  return { passes, forward };
}

const base = { maxBatchTokens: 100, maxWaitMs: 20, maxBatchRequests: Number.POSITIVE_INFINITY, maxQueue: 64 };

describe('serve: dynamic batcher', () => {
  it('joins requests that arrive within the wait into one pass, answers in order', async () => {
    const { passes, forward } = recorder();
    const b = new DynamicBatcher(forward, base);
    const answers = await Promise.all([b.submit([row(10, 1), row(10, 2)]), b.submit([row(10, 3)]), b.submit([row(10, 4)])]);
    expect(answers).to.deep.equal([[[1], [2]], [[3]], [[4]]]);
    expect(passes).to.have.lengthOf(1);
    expect(b.stats()).to.include({ batches: 1, sequences: 4, requestSlots: 3, maxRequestsInBatch: 3, depth: 0 });
  });

  it('keeps every pass within the padded-token budget, a longer row alone', async () => {
    const { passes, forward } = recorder();
    const b = new DynamicBatcher(forward, base);
    const lengths = [30, 40, 20, 50, 10, 120, 30, 30];
    await Promise.all(lengths.map((len, i) => b.submit([row(len, i + 1)])));
    for (const p of passes) {
      const padded = p.lengths.length * Math.max(...p.lengths);
      if (p.lengths.length > 1) expect(padded).to.be.at.most(100);
    }
    expect(passes.find((p) => p.lengths.includes(120))!.lengths).to.deep.equal([120]);
    expect(passes.flatMap((p) => p.tags).sort((a, b) => a - b)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('serves the oldest row in every pass and groups rows of similar length', async () => {
    const { passes, forward } = recorder();
    const b = new DynamicBatcher(forward, { ...base, maxBatchTokens: 60 });
    // Oldest is 30 long: its pass takes the 28 (closest), not the shorter 10s that fill budgets better.
    await Promise.all([b.submit([row(30, 1)]), b.submit([row(10, 2)]), b.submit([row(28, 3)]), b.submit([row(10, 4)])]);
    expect(passes[0].tags).to.deep.equal([1, 3]);
    expect(passes[1].tags).to.deep.equal([2, 4]);
  });

  it('runs one request per pass when maxBatchRequests is 1', async () => {
    const { passes, forward } = recorder();
    const b = new DynamicBatcher(forward, { ...base, maxBatchRequests: 1 });
    await Promise.all([b.submit([row(5, 1), row(5, 2)]), b.submit([row(5, 3)]), b.submit([row(5, 4)])]);
    expect(passes.map((p) => p.tags)).to.deep.equal([[1, 2], [3], [4]]);
  });

  it('waits at most maxWaitMs for company, and not at all once the budget is full', async () => {
    const { forward } = recorder();
    const b = new DynamicBatcher(forward, { ...base, maxWaitMs: 50 });
    let start = performance.now();
    await b.submit([row(10, 1)]);
    const waited = performance.now() - start;
    expect(waited).to.be.at.least(45);
    // Two rows of 60 fill the budget of 100: the first goes at once, and the rest of a request
    // already part-scored does not wait again.
    start = performance.now();
    const slow = new DynamicBatcher(forward, { ...base, maxWaitMs: 10_000 });
    expect(await slow.submit([row(60, 1), row(60, 2)])).to.deep.equal([[1], [2]]);
    expect(slow.stats().batches).to.equal(2);
    expect(performance.now() - start).to.be.below(5_000);
  });

  it('refuses a request beyond maxQueue with QueueFullError', async () => {
    const gate = new Gate();
    gate.close();
    const { forward } = recorder();
    const b = new DynamicBatcher(forward, { ...base, maxQueue: 2, maxWaitMs: 0 }, gate.pass);
    const first = b.submit([row(5, 1)]);
    const second = b.submit([row(5, 2)]);
    expect(b.full).to.equal(true);
    let err: unknown;
    try {
      await b.submit([row(5, 3)]);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(QueueFullError);
    gate.open();
    expect(await Promise.all([first, second])).to.deep.equal([[[1]], [[2]]]);
    expect(b.depth).to.equal(0);
  });

  it('rejects the requests of a failed pass and goes on with the next', async () => {
    let calls = 0;
    const b = new DynamicBatcher(
      async (rows) => {
        calls++;
        if (calls === 1) throw new Error('boom');
        return rows.map(() => [0.5]);
      },
      { ...base, maxBatchRequests: 1, maxWaitMs: 0 },
    );
    const results = await Promise.allSettled([b.submit([row(5, 1)]), b.submit([row(5, 2)])]);
    expect(results[0].status).to.equal('rejected');
    expect((results[0] as PromiseRejectedResult).reason.message).to.equal('boom');
    expect(results[1]).to.deep.equal({ status: 'fulfilled', value: [[0.5]] });
    expect(b.depth).to.equal(0);
  });

  it('flush() stops waiting and resolves when the queue is empty', async () => {
    const infos: BatchInfo[] = [];
    const { forward } = recorder();
    const b = new DynamicBatcher(forward, { ...base, maxWaitMs: 60_000 }, (info) => {
      infos.push(info);
    });
    const pending = [b.submit([row(10, 1)]), b.submit([row(20, 2)])];
    const start = performance.now();
    await b.flush();
    expect(performance.now() - start).to.be.below(5_000);
    expect(await Promise.all(pending)).to.deep.equal([[[1]], [[2]]]);
    expect(infos).to.deep.equal([{ requests: 2, sequences: 2, paddedTokens: 40 }]);
  });
});
