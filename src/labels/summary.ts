/** Human-readable summaries of the labeling commands' stats (the JSON goes to --stats). */
import type { ClientStats } from './client.js';
import type { ConsensusStats } from './consensus.js';
import type { JudgeStats } from './judge.js';
import type { McStats } from './mc.js';
import { formatQuality, type AgreementRow } from './stats.js';
import { percent } from '../util/format.js';

export function formatClient(c: ClientStats): string {
  const http = Object.entries(c.httpErrors)
    .map(([status, n]) => `${status}x${n}`)
    .join(' ');
  const causes = [`malformed ${c.malformed}`, `timeouts ${c.timeouts}`, `network ${c.networkErrors}`, http ? `http ${http}` : ''].filter(Boolean).join(', ');
  const endpoints = c.endpoints.length > 1 ? `; per endpoint ${c.endpoints.map((e) => `${e.url}=${e.requests}`).join(' ')}` : '';
  return `requests ${c.requests}, cache hits ${c.cacheHits}, retries ${c.retries} (${causes}), failures ${c.failures}${endpoints}`;
}

function formatAgreement(rows: Record<string, AgreementRow>, a: string, b: string): string {
  return Object.entries(rows)
    .map(([pos, r]) => `  ${pos.padStart(4)}: ${a} ${r.a}, ${b} ${r.b}, both ${r.agree}`)
    .join('\n');
}

export function formatMcStats(s: McStats): string {
  const lines = [
    `label mc: ${s.output}/${s.input} samples labelled (${percent(s.retention)}), ${s.failed.length} failed`,
    `  search ${s.search}, K=${s.rolloutsPerPrefix}, threshold ${s.threshold}: ${s.prefixesEvaluated} prefixes, ${s.rollouts} rollouts` +
      (s.search === 'binary' ? ` (linear search: ${s.rolloutsLinear}; saved ${s.rolloutsSaved}, ${percent(s.rolloutsLinear > 0 ? s.rolloutsSaved / s.rolloutsLinear : null)})` : ''),
    `  ${formatClient(s.client)}`,
    `  first error at: ${Object.entries(s.quality.positions).map(([p, n]) => `${p}=${n}`).join(' ')}`,
  ];
  if (s.quality.truth) lines.push(`  ${formatQuality('MC', s.quality)}`);
  return lines.join('\n');
}

export function formatJudgeStats(s: JudgeStats): string {
  const lines = [
    `label judge: ${s.output}/${s.input} samples written, ${s.unparsable} unparsable (after ${s.parseRetries} re-asks), ${s.failed.length} failed; verdicts for ${percent(s.retention)}`,
    `  ${formatClient(s.client)}`,
    `  first error at: ${Object.entries(s.quality.positions).map(([p, n]) => `${p}=${n}`).join(' ')}`,
  ];
  if (s.quality.truth) lines.push(`  ${formatQuality('judge', s.quality)}`);
  return lines.join('\n');
}

export function formatConsensusStats(s: ConsensusStats): string {
  const reasons = Object.entries(s.dropReasons)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  const lines = [
    `label consensus: kept ${s.kept}/${s.samples} (retention ${percent(s.retention)}), dropped ${s.dropped}${reasons ? ` (${reasons})` : ''}`,
    `  MC vs judge agreement ${percent(s.agreement.agreement)} over ${s.agreement.n}; by first-error position:`,
    formatAgreement(s.agreement.byPosition, 'mc', 'judge'),
  ];
  if (s.quality.mc.truth) {
    lines.push(`  ${formatQuality('MC', s.quality.mc)}`, `  ${formatQuality('judge', s.quality.judge)}`, `  ${formatQuality('consensus', s.quality.consensus)}`);
  }
  return lines.join('\n');
}
