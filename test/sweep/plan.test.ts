import { expect } from 'chai';
import { expandGrid, parseGridFlag, parseShard, planSweep, sampleIndices, shardPoints, SweepPlanError, variantsFromConfig } from '../../src/sweep/plan.js';

describe('sweep/plan', () => {
  it('types --grid values by the recipe schema', () => {
    expect(parseGridFlag('train.lr=1e-3,3e-3')).to.deep.equal({ key: 'train.lr', values: [1e-3, 3e-3] });
    expect(parseGridFlag('labels.threshold=0, 0.125')).to.deep.equal({ key: 'labels.threshold', values: [0, 0.125] });
    expect(parseGridFlag('train.freeze.head_only=true,false').values).to.deep.equal([true, false]);
    expect(parseGridFlag('labels.method=mc,consensus').values).to.deep.equal(['mc', 'consensus']);
    expect(parseGridFlag('eval.threshold=0.5,auto').values).to.deep.equal([0.5, 'auto']);
    // A list-valued key takes a YAML list of lists.
    expect(parseGridFlag('data.world.ops=[[+, "-"], ["*"]]').values).to.deep.equal([['+', '-'], ['*']]);
  });

  it('rejects unknown keys, untyped values and malformed flags, naming them', () => {
    expect(() => parseGridFlag('train.lrr=1')).to.throw(SweepPlanError, /unknown key train\.lrr \(keys under train: .*lr/);
    expect(() => parseGridFlag('train.lr=fast')).to.throw(SweepPlanError, /train\.lr=fast: expected a number/);
    expect(() => parseGridFlag('train.lr')).to.throw(/expected key\.path=v1,v2/);
    expect(() => parseGridFlag('train.lr=1,,2')).to.throw(/empty value/);
    expect(() => variantsFromConfig({ variants: { a: { 'train.epochs': 'two' } } })).to.throw(/train\.epochs=two: expected a number/);
  });

  it('expands a grid as the cartesian product, the first axis slowest', () => {
    const points = expandGrid([
      { key: 'a', values: [1, 2] },
      { key: 'b', values: ['x', 'y', 'z'] },
    ]);
    expect(points).to.deep.equal([
      { a: 1, b: 'x' },
      { a: 1, b: 'y' },
      { a: 1, b: 'z' },
      { a: 2, b: 'x' },
      { a: 2, b: 'y' },
      { a: 2, b: 'z' },
    ]);
    expect(expandGrid([])).to.deep.equal([{}]);
  });

  it('names points by variant and varying grid values, unique and directory-safe', () => {
    const plan = planSweep({
      variants: [
        { name: 'mc', params: { 'labels.method': 'mc' } },
        { name: 'cons', params: { 'labels.method': 'consensus' } },
      ],
      grid: [
        { key: 'data.problems', values: [100, 200] },
        { key: 'train.lr', values: [0.001] },
      ],
    });
    expect(plan.total).to.equal(4);
    expect(plan.points.map((p) => p.name)).to.deep.equal(['mc_problems-100', 'mc_problems-200', 'cons_problems-100', 'cons_problems-200']);
    expect(plan.points[3]).to.deep.equal({ name: 'cons_problems-200', variant: 'cons', params: { 'labels.method': 'consensus', 'data.problems': 200, 'train.lr': 0.001 } });
    // Keys sharing a last segment are named in full; odd characters become "_".
    const clash = planSweep({ grid: [{ key: 'seed', values: [1, 2] }, { key: 'train.seed', values: [3] }, { key: 'eval.threshold', values: ['auto', 0.5] }] });
    expect(clash.points.map((p) => p.name)).to.include('seed-1_train.seed-3_threshold-auto');
    expect(planSweep({}).points).to.deep.equal([{ name: 'base', variant: null, params: {} }]);
    expect(() => planSweep({ variants: [{ name: 'v', params: { 'train.lr': 1 } }], grid: [{ key: 'train.lr', values: [2] }] })).to.throw(/both set train\.lr/);
  });

  it('random sampling is seeded: same seed same points, distinct points, plan order kept', () => {
    const grid = [
      { key: 'train.lr', values: [1, 2, 3, 4, 5] },
      { key: 'train.epochs', values: [1, 2, 3, 4] },
    ];
    const a = planSweep({ grid, random: { n: 6, seed: 11 } });
    const b = planSweep({ grid, random: { n: 6, seed: 11 } });
    const c = planSweep({ grid, random: { n: 6, seed: 12 } });
    expect(a.total).to.equal(20);
    expect(a.points).to.deep.equal(b.points);
    expect(a.points).to.have.length(6);
    expect(new Set(a.points.map((p) => p.name)).size).to.equal(6);
    expect(a.points.map((p) => p.name)).to.not.deep.equal(c.points.map((p) => p.name));
    const all = planSweep({ grid }).points.map((p) => p.name);
    const positions = a.points.map((p) => all.indexOf(p.name));
    expect(positions).to.deep.equal([...positions].sort((x, y) => x - y));
    expect(planSweep({ grid, random: { n: 50, seed: 1 } }).points).to.have.length(20);
    // Huge products are sampled without listing them.
    const big = sampleIndices(1e12, 5, 3);
    expect(big).to.have.length(5);
    expect(big.every((i) => Number.isInteger(i) && i >= 0 && i < 1e12)).to.equal(true);
  });

  it('shards partition the points: each point in exactly one shard, sizes within one', () => {
    const points = Array.from({ length: 11 }, (_, i) => `p${i}`);
    for (let count = 1; count <= 6; count++) {
      const shards = Array.from({ length: count }, (_, index) => shardPoints(points, { index, count }));
      const flat = shards.flat();
      expect(flat).to.have.length(points.length);
      expect(new Set(flat).size).to.equal(points.length);
      const sizes = shards.map((s) => s.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).to.be.at.most(1);
    }
    expect(shardPoints(points, null)).to.deep.equal(points);
    expect(parseShard('2/4')).to.deep.equal({ index: 2, count: 4 });
    expect(() => parseShard('4/4')).to.throw(/i counts from 0 and must be below n/);
    expect(() => parseShard('1-4')).to.throw(/expected i\/n/);
    expect(() => parseShard('0/0')).to.throw(/n must be at least 1/);
  });
});
