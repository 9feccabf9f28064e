import { expect } from 'chai';
import { casStats, isEquivalent } from '../../src/math/index.js';

/**
 * compute-engine evaluates this sum term by term (10^8 terms): minutes of work that its own time
 * limits do not interrupt. The worker deadline must cut it off.
 */
const PATHOLOGICAL = '\\sum_{n=1}^{10^{8}}\\frac{1}{n}';

describe('symbolic checks are bounded in time', function () {
  this.timeout(60_000);

  before(() => {
    // Start the CAS worker outside the timed part (start-up is not part of a check's deadline).
    expect(isEquivalent('\\sqrt{2}', '1.41421356')).to.equal(true);
  });

  it('a pathological answer returns false within the deadline and counts as a timeout', () => {
    const before = casStats();
    const started = performance.now();
    const result = isEquivalent(PATHOLOGICAL, '18.997896', { timeoutMs: 400 });
    const after = casStats();
    const elapsed = performance.now() - started - (after.startupMs - before.startupMs);
    console.log(`    pathological check returned ${result} after ${elapsed.toFixed(0)} ms (deadline 400 ms)`);
    expect(result).to.equal(false);
    expect(elapsed).to.be.below(400 + 600);
    expect(after.timeouts - before.timeouts).to.equal(1);
  });

  it('grading goes on after a timeout (a fresh worker answers the next check)', () => {
    expect(isEquivalent('\\sqrt{8}', '2\\sqrt{2}', { timeoutMs: 30_000 })).to.equal(true);
    expect(isEquivalent('\\frac{x+1}{2}', '0.5x+0.5', { timeoutMs: 30_000 })).to.equal(true);
  });

  it('a list of pathological members is bounded as a whole (3 x the per-check deadline, start-ups aside)', () => {
    const before = casStats();
    const started = performance.now();
    const list = [1, 2, 3, 4].map((k) => `\\sum_{n=1}^{10^{8}}\\frac{${k}}{n}`).join(', ');
    const result = isEquivalent(list, '1, 2, 3, 4', { timeoutMs: 300 });
    const elapsed = performance.now() - started;
    const after = casStats();
    // A timeout kills the worker; the replacement's start-up is waited for outside the deadlines.
    const startup = after.startupMs - before.startupMs;
    console.log(
      `    4-member pathological list returned ${result} after ${elapsed.toFixed(0)} ms ` +
        `(${startup.toFixed(0)} ms of it restarting the worker; budget 900 ms)`,
    );
    expect(result).to.equal(false);
    expect(elapsed - startup).to.be.below(3 * 300 + 600);
    expect(after.timeouts - before.timeouts).to.be.at.least(1);
  });

  it('the plain-number path never touches the CAS', () => {
    const before = casStats();
    for (let i = 0; i < 2000; i++) isEquivalent(`${i}`, `${i}.0`);
    expect(casStats().calls).to.equal(before.calls);
  });
});
