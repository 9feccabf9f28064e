import { expect } from 'chai';
import { shardRange, shardRows } from '../../src/distributed/shard.js';

describe('data-parallel batch split', () => {
  it('gives every row to exactly one rank, in order, with shares differing by at most one', () => {
    for (let world = 1; world <= 7; world++) {
      for (let n = 0; n <= 30; n++) {
        const rows = Array.from({ length: n }, (_, i) => 100 + i);
        const shares = Array.from({ length: world }, (_, r) => shardRows(rows, r, world));
        expect(shares.flat(), `n=${n} world=${world}`).to.deep.equal(rows);
        const sizes = shares.map((s) => s.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).to.be.at.most(1);
        // Larger shares come first (as numpy.array_split), so rank 0 is never the short one.
        expect([...sizes].sort((a, b) => b - a)).to.deep.equal(sizes);
      }
    }
  });

  it('leaves the last ranks empty when a micro-batch has fewer rows than workers', () => {
    expect([0, 1, 2, 3].map((r) => shardRows(['a', 'b', 'c'], r, 4))).to.deep.equal([['a'], ['b'], ['c'], []]);
  });

  it('rejects a rank outside the group', () => {
    expect(() => shardRange(4, 2, 2)).to.throw(/rank 2 outside \[0, 2\)/);
    expect(() => shardRange(4, 0, 0)).to.throw(/worldSize 0/);
  });
});
