import { expect } from 'chai';
import { Rng } from '../../src/util/rng.js';

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const seqA = Array.from({ length: 5 }, () => a.nextU32());
    expect(Array.from({ length: 5 }, () => b.nextU32())).to.deep.equal(seqA);
    expect(Array.from({ length: 5 }, () => c.nextU32())).to.not.deep.equal(seqA);
  });

  it('resumes bit for bit from a saved state', () => {
    const a = new Rng('resume');
    a.next();
    const saved = a.state();
    const expected = [a.next(), a.next(), a.next()];
    const b = Rng.fromState(saved);
    expect([b.next(), b.next(), b.next()]).to.deep.equal(expected);
  });

  it('draws uniforms in [0,1) with a sane mean', () => {
    const r = new Rng(7);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const x = r.next();
      expect(x).to.be.at.least(0).and.below(1);
      sum += x;
    }
    expect(sum / 20000).to.be.closeTo(0.5, 0.01);
  });
});
