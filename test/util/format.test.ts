import { expect } from 'chai';
import { percent, percentValue, share } from '../../src/util/format.js';

describe('util/format', () => {
  it('percent reads a fraction; share a part of a whole; percentValue a value already in percent', () => {
    expect(percent(0.1234)).to.equal('12.3%');
    expect(percent(1)).to.equal('100.0%');
    expect(percent(0.5, { sign: false, digits: 2 })).to.equal('50.00');
    expect(share(1, 8)).to.equal('12.5%');
    expect(share(2, 3, { digits: 2, sign: false })).to.equal('66.67');
    expect(percentValue(66.666)).to.equal('66.7');
    expect(percentValue(50, 0)).to.equal('50');
  });

  it('says so when there is no number, each with its own placeholder', () => {
    for (const missing of [null, undefined, Number.NaN]) {
      expect(percent(missing)).to.equal('n/a');
      expect(percentValue(missing)).to.equal('-');
    }
    expect(percent(null, { missing: '-' })).to.equal('-');
    expect(share(3, 0)).to.equal('n/a');
    expect(share(0, 0, { missing: '0.00', digits: 2, sign: false })).to.equal('0.00');
  });
});
