import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { AdamW, DEFAULT_NO_DECAY_PATTERNS } from '../../src/train/optimizer.js';
import { clipByGlobalNorm, GradientAccumulator, globalNorm } from '../../src/train/gradients.js';
import { learningRateAt, lrMultiplier, type ScheduleKind } from '../../src/train/schedule.js';

interface FixtureStep {
  grads: Record<string, number[]>;
  lr: number;
  norm: number;
  params: Record<string, number[]>;
}
interface FixtureCase {
  name: string;
  schedule: ScheduleKind;
  lr: number;
  weight_decay: number;
  max_norm: number;
  warmup: number;
  total: number;
  shapes: Record<string, number[]>;
  no_decay: string[];
  initial: Record<string, number[]>;
  steps: FixtureStep[];
  final_state: Record<string, { exp_avg: number[]; exp_avg_sq: number[]; step: number }>;
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/train/adamw.json', import.meta.url), 'utf8')) as {
  cases: FixtureCase[];
  schedules: { kind: ScheduleKind; warmup: number; total: number; multipliers: number[] }[];
};

/** A variable from values; the temporary tensor is disposed so leak checks stay exact. */
function variableOf(values: ArrayLike<number>, shape: number[]): tf.Variable {
  const t = tf.tensor(Array.from(values), shape);
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('train/schedule', () => {
  it('matches transformers warmup schedules step by step', () => {
    for (const table of fixture.schedules) {
      table.multipliers.forEach((expected, step) => {
        const got = lrMultiplier(step, { kind: table.kind, warmupSteps: table.warmup, totalSteps: table.total });
        expect(got, `${table.kind} warmup=${table.warmup} total=${table.total} step=${step}`).to.be.closeTo(expected, 1e-12);
      });
    }
  });

  it('scales by the base learning rate', () => {
    expect(learningRateAt(5, { kind: 'cosine', baseLr: 2e-4, warmupSteps: 10, totalSteps: 100 })).to.be.closeTo(1e-4, 1e-15);
  });
});

describe('train/optimizer AdamW against torch', () => {
  for (const c of fixture.cases) {
    it(`${c.name}: params, lr, pre-clip norm and moments match torch to 1e-6`, () => {
      const before = tf.memory().numTensors;
      const names = Object.keys(c.shapes);
      const vars = names.map((n) => ({ name: n, variable: variableOf(c.initial[n], c.shapes[n]) }));
      const opt = new AdamW(vars, { weightDecay: c.weight_decay });
      for (const n of names) expect(opt.decays(n), n).to.equal(!c.no_decay.includes(n));
      const afterSetup = tf.memory().numTensors;
      c.steps.forEach((s, k) => {
        const lr = learningRateAt(k, { kind: c.schedule, baseLr: c.lr, warmupSteps: c.warmup, totalSteps: c.total });
        expect(lr, `lr at step ${k}`).to.be.closeTo(s.lr, 1e-12);
        const raw = names.map((n) => tf.tensor(s.grads[n], c.shapes[n]));
        const { grads, norm } = clipByGlobalNorm(raw, c.max_norm);
        expect(norm, `norm at step ${k}`).to.be.closeTo(s.norm, 1e-5 * Math.max(1, s.norm));
        opt.apply(grads, lr);
        tf.dispose(raw);
        tf.dispose(grads);
        expect(tf.memory().numTensors, 'no tensors left per step').to.equal(afterSetup);
        for (const v of vars) {
          expect(maxAbsDiff(v.variable.dataSync(), s.params[v.name]), `${v.name} after step ${k}`).to.be.below(1e-6);
        }
      });
      const state = opt.exportState();
      expect(state.step).to.equal(c.steps.length);
      for (const n of names) {
        expect(maxAbsDiff(state.tensors.get(`exp_avg.${n}`)!.data, c.final_state[n].exp_avg)).to.be.below(1e-6);
        expect(maxAbsDiff(state.tensors.get(`exp_avg_sq.${n}`)!.data, c.final_state[n].exp_avg_sq)).to.be.below(1e-6);
      }
      opt.dispose();
      for (const v of vars) v.variable.dispose();
      expect(tf.memory().numTensors).to.equal(before);
    });
  }

  it('export/import of the state continues exactly like an uninterrupted optimizer', () => {
    const c = fixture.cases[0];
    const names = Object.keys(c.shapes);
    const make = () => names.map((n) => ({ name: n, variable: variableOf(c.initial[n], c.shapes[n]) }));
    const straightVars = make();
    const straight = new AdamW(straightVars, { weightDecay: c.weight_decay });
    const firstVars = make();
    const first = new AdamW(firstVars, { weightDecay: c.weight_decay });
    const step = (opt: AdamW, k: number) => {
      const g = names.map((n) => tf.tensor(c.steps[k].grads[n], c.shapes[n]));
      opt.apply(g, 1e-2);
      tf.dispose(g);
    };
    for (let k = 0; k < 3; k++) {
      step(straight, k);
      step(first, k);
    }
    const saved = first.exportState();
    const weights = firstVars.map((v) => v.variable.dataSync().slice());
    const resumedVars = names.map((n, i) => ({ name: n, variable: variableOf(weights[i], c.shapes[n]) }));
    const resumed = new AdamW(resumedVars, { weightDecay: c.weight_decay });
    resumed.importState(saved);
    for (let k = 3; k < 6; k++) {
      step(straight, k);
      step(resumed, k);
    }
    straightVars.forEach((v, i) => {
      expect(Array.from(resumedVars[i].variable.dataSync())).to.deep.equal(Array.from(v.variable.dataSync()));
    });
    for (const o of [straight, first, resumed]) o.dispose();
    for (const v of [...straightVars, ...firstVars, ...resumedVars]) v.variable.dispose();
  });

  it('rejects state with a wrong shape, naming the tensor', () => {
    const v = tf.variable(tf.zeros([2, 2]));
    const opt = new AdamW([{ name: 'w', variable: v }]);
    const bad = { step: 1, tensors: new Map([['exp_avg.w', { shape: [4], data: new Float32Array(4) }], ['exp_avg_sq.w', { shape: [2, 2], data: new Float32Array(4) }]]) };
    expect(() => opt.importState(bad)).to.throw(/exp_avg\.w has shape \[4\]/);
    opt.dispose();
    v.dispose();
  });

  it('excludes biases and norm weights from decay by default', () => {
    const res = DEFAULT_NO_DECAY_PATTERNS.map((s) => new RegExp(s));
    const noDecay = (n: string) => res.some((r) => r.test(n));
    expect(noDecay('score.0.bias')).to.equal(true);
    expect(noDecay('model.layers.0.input_layernorm.weight')).to.equal(true);
    expect(noDecay('model.norm.weight')).to.equal(true);
    expect(noDecay('model.layers.0.self_attn.q_proj.weight')).to.equal(false);
    expect(noDecay('model.embed_tokens.weight')).to.equal(false);
  });
});

describe('train/gradients', () => {
  it('accumulates micro-batch gradients into their sum without leaking', () => {
    const before = tf.memory().numTensors;
    const acc = new GradientAccumulator();
    acc.add([tf.tensor([1, 2]), tf.tensor([[3]])]);
    acc.add([tf.tensor([10, 20]), tf.tensor([[30]])]);
    acc.add([tf.tensor([100, 200]), tf.tensor([[300]])]);
    expect(acc.microBatches).to.equal(3);
    const sum = acc.take();
    expect(Array.from(sum[0].dataSync())).to.deep.equal([111, 222]);
    expect(Array.from(sum[1].dataSync())).to.deep.equal([333]);
    tf.dispose(sum);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('reports a non-finite norm and leaves gradients unscaled', () => {
    const g = [tf.tensor([1, NaN]), tf.tensor([2])];
    const { grads, norm } = clipByGlobalNorm(g, 1);
    expect(Number.isNaN(norm)).to.equal(true);
    tf.dispose([...g, ...grads]);
    const inf = [tf.tensor([Infinity])];
    expect(globalNorm(inf)).to.equal(Infinity);
    tf.dispose(inf);
  });
});
