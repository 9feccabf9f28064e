import { expect } from 'chai';
import type { StepSample } from '../../src/data/types.js';
import { planEpoch, prepareItems, TrainingPlan, formatPrepareReport, type EncodeFn } from '../../src/train/batches.js';
import { auroc, devMetrics } from '../../src/train/dev-metrics.js';
import { TrainSchema } from '../../src/recipes/schema.js';

/**
 * A stand-in encoder with the contract of encodeSample: one token per word, a step token after
 * every step, and keep-first-steps truncation at maxLength with the kept count reported.
 */
function wordEncoder(maxLength: number): EncodeFn {
  return ({ problem, steps }) => {
    const ids: number[] = problem.split(' ').map(() => 5);
    const positions: number[] = [];
    let kept = 0;
    for (const step of steps) {
      const stepIds = [...step.split(' ').map(() => 6), 1];
      if (ids.length + stepIds.length > maxLength) break;
      ids.push(...stepIds);
      positions.push(ids.length - 1);
      kept++;
    }
    return {
      inputIds: ids,
      stepPositions: positions,
      nSteps: kept,
      truncated: kept < steps.length ? { keptSteps: kept, reason: `longer than ${maxLength} tokens` } : undefined,
    };
  };
}

function sample(id: string, steps: string[], labels?: number[]): StepSample {
  return { id, problem: 'p q', steps, labels, source: 'test', meta: {} };
}

describe('train/batches prepareItems', () => {
  const samples = [
    sample('fits', ['a b', 'c'], [1, 1]),
    sample('long', ['a b c', 'd e f', 'g h i'], [1, 1, 0]),
    sample('first-too-long', ['a b c d e f g h i j'], [0]),
    sample('mc-prefix', ['a', 'b', 'c'], [1, 0]),
    sample('unlabelled', ['a']),
  ];

  it('keep-first-steps keeps the steps that fit and counts what was cut', () => {
    const { items, report } = prepareItems(samples, wordEncoder(10), { truncation: 'keep-first-steps', labelMode: 'hard' });
    expect(items.map((i) => i.id)).to.deep.equal(['fits', 'long', 'mc-prefix']);
    expect(items[1].labels).to.deep.equal([1, 1]);
    expect(items[1].stepPositions).to.deep.equal([5, 9]);
    expect(items[2].labels).to.deep.equal([1, 0]);
    expect(report).to.deep.equal({ samples: 5, kept: 3, unlabelled: 1, cutAfterLastLabel: 1, droppedTooLong: 1, truncatedSamples: 1, droppedSteps: 2 });
    expect(formatPrepareReport('train', report, 10, 'keep-first-steps')).to.match(/1 dropped, 1 cut to their first steps, 2 labelled steps lost/);
  });

  it('drop removes every sample that does not fit', () => {
    const { items, report } = prepareItems(samples, wordEncoder(10), { truncation: 'drop', labelMode: 'hard' });
    expect(items.map((i) => i.id)).to.deep.equal(['fits', 'mc-prefix']);
    expect(report.droppedTooLong).to.equal(2);
    expect(report.truncatedSamples).to.equal(0);
    expect(report.droppedSteps).to.equal(4);
  });

  it('rejects soft labels in hard mode, naming the sample and the step', () => {
    expect(() => prepareItems([sample('s1', ['a', 'b'], [1, 0.5])], wordEncoder(50), { truncation: 'drop', labelMode: 'hard' })).to.throw(
      /sample s1: labels\[1\] = 0.5, expected 0 or 1/,
    );
    const { items } = prepareItems([sample('s1', ['a', 'b'], [1, 0.5])], wordEncoder(50), { truncation: 'drop', labelMode: 'soft' });
    expect(items[0].labels).to.deep.equal([1, 0.5]);
  });
});

describe('train/batches planning', () => {
  const lengths = Array.from({ length: 200 }, (_, i) => 5 + ((i * 37) % 60));
  const opts = { maxTokensPerBatch: 256, maxBatchSize: 8, seed: 7 };

  it('covers every item exactly once per epoch within the token budget', () => {
    for (const epoch of [0, 1]) {
      const batches = planEpoch(lengths, epoch, opts);
      const seen = batches.flat().sort((a, b) => a - b);
      expect(seen).to.deep.equal(lengths.map((_, i) => i));
      for (const b of batches) {
        expect(b.length).to.be.at.most(8);
        expect(b.length * Math.max(...b.map((i) => lengths[i]))).to.be.at.most(256);
      }
    }
  });

  it('is a function of the seed and the epoch, and groups similar lengths', () => {
    expect(planEpoch(lengths, 0, opts)).to.deep.equal(planEpoch(lengths, 0, opts));
    expect(planEpoch(lengths, 0, opts)).to.not.deep.equal(planEpoch(lengths, 1, opts));
    expect(planEpoch(lengths, 0, opts)).to.not.deep.equal(planEpoch(lengths, 0, { ...opts, seed: 8 }));
    const padded = planEpoch(lengths, 0, opts).reduce((sum, b) => sum + b.length * Math.max(...b.map((i) => lengths[i])), 0);
    const real = lengths.reduce((a, b) => a + b, 0);
    expect(padded / real).to.be.below(1.2);
  });

  it('without group_by_length, batches are runs of the shuffled order, still within the budget', () => {
    const free = { ...opts, groupByLength: false };
    for (const epoch of [0, 1]) {
      const batches = planEpoch(lengths, epoch, free);
      expect(batches.flat().sort((a, b) => a - b)).to.deep.equal(lengths.map((_, i) => i));
      for (const b of batches) {
        expect(b.length).to.be.at.most(8);
        expect(b.length * Math.max(...b.map((i) => lengths[i]))).to.be.at.most(256);
      }
    }
    // Not sorted: a batch's lengths spread as widely as the data's, where grouped batches barely spread.
    const spread = (batches: number[][]) => batches.reduce((a, b) => a + Math.max(...b.map((i) => lengths[i])) - Math.min(...b.map((i) => lengths[i])), 0) / batches.length;
    expect(spread(planEpoch(lengths, 0, free))).to.be.above(20);
    expect(spread(planEpoch(lengths, 0, opts))).to.be.below(5);
    expect(planEpoch(lengths, 0, free)).to.deep.equal(planEpoch(lengths, 0, free));
  });

  it('puts an item longer than the token budget in a batch of its own', () => {
    const batches = planEpoch([10, 300, 12], 0, opts);
    expect(batches.find((b) => b.includes(1))).to.deep.equal([1]);
  });

  it('trains batch_size x grad_accumulation rows every optimizer step; the token cap adds micro-batches, never drops rows', () => {
    // batch_size 16, grad_accumulation 2, and rows long enough that 16 of them exceed the token cap.
    const long = Array.from({ length: 330 }, (_, i) => 100 + ((i * 53) % 200));
    for (const groupByLength of [true, false]) {
      const plan = new TrainingPlan(long, 2, 2, { maxTokensPerBatch: 2048, maxBatchSize: 16, seed: 3, groupByLength });
      expect(plan.rowsPerStep).to.equal(32);
      const perEpoch = Math.ceil(330 / 32);
      expect(plan.totalSteps).to.equal(2 * perEpoch);
      const sizes = Array.from({ length: plan.totalSteps }, (_, k) => plan.microBatches(k).flat().length);
      // Every step is full but one remainder per epoch.
      expect(sizes.filter((n) => n !== 32)).to.deep.equal([330 - 32 * (perEpoch - 1), 330 - 32 * (perEpoch - 1)]);
      for (let k = 0; k < plan.totalSteps; k++) {
        const micro = plan.microBatches(k);
        for (const mb of micro) {
          expect(mb.length).to.be.at.most(16);
          expect(mb.length * Math.max(...mb.map((i) => long[i]))).to.be.at.most(2048);
        }
      }
      // More micro-batches than grad_accumulation where the cap cut them: the cap shows, rows do not move.
      expect(Math.max(...plan.steps.map((st) => st.end - st.start))).to.be.above(2);
      for (const e of [0, 1]) {
        const seen = plan.steps.filter((st) => st.epoch === e).flatMap((_, k) => plan.microBatches(k + e * perEpoch).flat());
        expect(seen.sort((a, b) => a - b)).to.deep.equal(long.map((_, i) => i));
      }
    }
  });

  it('maps cursors to optimizer steps both ways', () => {
    const plan = new TrainingPlan(lengths, 2, 3, opts);
    expect(plan.totalSteps).to.equal(2 * Math.ceil(200 / 24));
    for (let s = 0; s <= plan.totalSteps; s++) expect(plan.stepOf(plan.cursorAt(s))).to.equal(s);
    const second = plan.steps[1];
    if (second.start > 1) expect(() => plan.stepOf({ epoch: 0, batch: 1 })).to.throw(/not a step boundary/);
    expect(new TrainingPlan(lengths, 5, 1, opts, 7).totalSteps).to.equal(7);
  });
});

describe('train/dev-metrics', () => {
  it('AUROC by ranks with ties', () => {
    expect(auroc([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).to.equal(0.75);
    expect(auroc([0.5, 0.5], [false, true])).to.equal(0.5);
    expect(auroc([0.2, 0.3], [true, true])).to.equal(null);
  });

  it('step accuracy and first-error F1 through the ProcessBench metric', () => {
    const m = devMetrics(
      [
        { scores: [0.9, 0.2], labels: [1, 0] }, // first error 1 predicted 1
        { scores: [0.9, 0.8], labels: [1, 1] }, // none predicted none
        { scores: [0.3, 0.8], labels: [1, 0] }, // first error 1 predicted 0
      ],
      0.5,
    );
    expect(m.step_accuracy).to.be.closeTo((100 * 4) / 6, 1e-9);
    // acc_error 50, acc_correct 100 -> F1 66.67
    expect(m.first_error_f1).to.be.closeTo(200 / 3, 1e-9);
    expect(m.n_samples).to.equal(3);
  });

  it('first-error F1 of an uncalibrated PRM at the dev-chosen threshold, not 0 at 0.5', () => {
    // Every score in 0.619-0.624 (above 0.5), ranked right: wrong first steps score lowest.
    const samples = [
      { scores: [0.623, 0.6195], labels: [1, 0] },
      { scores: [0.6235, 0.624], labels: [1, 1] },
      { scores: [0.619, 0.622], labels: [0, 0] },
      { scores: [0.6225, 0.6232], labels: [1, 1] },
    ];
    const atHalf = devMetrics(samples, 0.6, 0.5);
    expect(atHalf.first_error_f1).to.equal(0);
    const m = devMetrics(samples, 0.6);
    expect(m.first_error_f1).to.be.closeTo(100, 1e-9);
    expect(m.first_error_threshold).to.be.within(0.6195, 0.6225);
  });

  it('picks checkpoints by dev loss unless the recipe says otherwise', () => {
    expect(TrainSchema.parse({}).metric).to.equal('dev_loss');
  });
});
