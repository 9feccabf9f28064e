import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { readJsonlAll } from '../../src/data/jsonl.js';
import { casStats, gradeAnswer } from '../../src/math/index.js';

/**
 * Pairs built by scripts/fixtures/make_grader_pairs.py from bon-eval gold answers (rewrites and near misses),
 * labelled by math-verify 0.9.0. Our grader must agree on at least 98%; every disagreement is
 * printed, with a note where we believe the reference is wrong (counted against us all the same).
 */
interface Pair {
  id: number;
  source: string;
  kind: string;
  intent: 'equivalent' | 'near_miss';
  gold: string;
  response: string;
  reference: boolean;
  reference_gold_parsed: string | null;
  reference_response_parsed: string | null;
}

const FIXTURE = fileURLToPath(new URL('../fixtures/math/grader_pairs.jsonl', import.meta.url));
const REQUIRED_AGREEMENT = 0.98;

/**
 * Why we think math-verify's label is wrong on a disagreement, when a rule recognises the case.
 * These pairs still count as disagreements.
 */
function referenceDoubt(p: Pair, ours: boolean): string | undefined {
  const parsed = p.reference_response_parsed ?? '';
  if (ours && p.intent === 'equivalent' && (/=\s*$/.test(parsed) || parsed.replace(/\s/g, '') === p.response.replace(/^.*\\boxed\{(.*)\}\$\.$/, '$1').replace(/\s/g, ''))) {
    return 'math-verify did not parse the response into an expression (fell back to its text), so it missed an equivalent rewrite';
  }
  if (!ours && p.kind === 'dropped_member') {
    const items = p.gold.split(',').map((x) => x.trim());
    if (new Set(items).size < items.length) return 'math-verify compares answer lists as sets, so dropping a repeated member passes; we compare multisets';
  }
  if (ours && /(?:^|[^\\])\bi\b/.test(p.gold) && p.intent === 'equivalent') {
    return 'the same complex number written in another order; math-verify reads i inconsistently';
  }
  return undefined;
}

describe('grader vs math-verify 0.9.0 on generated gold/response pairs', function () {
  this.timeout(120_000);

  it(`agrees with the reference on at least ${REQUIRED_AGREEMENT * 100}% and lists every disagreement`, async () => {
    const pairs = (await readJsonlAll(FIXTURE)).map((l) => l.value as Pair);
    expect(pairs.length).to.be.within(300, 600);
    const before = casStats();
    const started = performance.now();
    const disagreements: string[] = [];
    for (const p of pairs) {
      const { extracted, correct } = gradeAnswer(p.response, p.gold);
      if (correct === p.reference) continue;
      const doubt = referenceDoubt(p, correct);
      disagreements.push(
        `#${p.id} [${p.source}/${p.kind}, meant ${p.intent}] gold ${JSON.stringify(p.gold)} response ${JSON.stringify(p.response)}\n` +
          `        ours ${correct} (extracted ${JSON.stringify(extracted)}), math-verify ${p.reference} ` +
          `(parsed ${p.reference_gold_parsed} vs ${p.reference_response_parsed})${doubt ? `\n        note: ${doubt}` : ''}`,
      );
    }
    const seconds = (performance.now() - started) / 1000;
    const after = casStats();
    const agreement = 1 - disagreements.length / pairs.length;
    console.log(
      `    agreement ${(agreement * 100).toFixed(2)}% (${pairs.length - disagreements.length}/${pairs.length}), ` +
        `${disagreements.length} disagreements; ${seconds.toFixed(2)} s, CAS checks ${after.calls - before.calls}, ` +
        `timeouts ${after.timeouts - before.timeouts}`,
    );
    for (const d of disagreements) console.log(`      ${d}`);
    expect(agreement).to.be.at.least(REQUIRED_AGREEMENT);
  });
});
