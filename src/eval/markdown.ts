/** Small markdown table helpers for the evaluation summaries printed on stdout. */
import { percentValue } from '../util/format.js';

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

/** A metric already in percent (0-100), with one decimal, or "-" when undefined. */
export const pct = percentValue;
