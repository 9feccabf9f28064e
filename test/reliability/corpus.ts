/**
 * The seeded corpus of the fuzz suite: valid records of a command's input made malformed in one
 * of the ways careless users and attackers produce, each with the line an error must name.
 */
import type { Rng } from '../../src/util/rng.js';

export const KINDS = ['truncated', 'bom', 'crlf', 'invalid-utf8', 'deep', 'huge', 'nan', 'big-number', 'dup-id', 'step-token'] as const;
export type Kind = (typeof KINDS)[number];

/** Every generated record holds this word once, in a step or response: the malformations replace it. */
export const MARK = 'MARK';
/** The line limit the suite runs the CLI with (PRMKIT_MAX_LINE_BYTES), so "huge" lines stay small files. */
export const FUZZ_MAX_LINE_BYTES = 65_536;

export interface Corpus {
  bytes: Buffer;
  /** 1-based line the error must name (for kinds that make a bad record). */
  badLine: number;
}

const WORDS = ['she', 'has', 'apples', 'and', 'buys', 'more', 'so', 'the', 'answer', 'is', 'half', 'of', 'pens', 'are', 'red'];

export function words(rng: Rng, n: number): string {
  return Array.from({ length: n }, () => WORDS[rng.int(0, WORDS.length - 1)]).join(' ');
}

/** Inserts a member right after the opening brace of a JSON object line. */
function withMember(line: string, member: string): string {
  return `{${member},${line.slice(1)}`;
}

function replaceMark(line: string, by: string): string {
  if (!line.includes(MARK)) throw new Error(`corpus record without ${MARK}: ${line.slice(0, 80)}`);
  return line.replace(MARK, by);
}

/**
 * `lines` (valid JSON records, one per line, each holding MARK) made malformed by `kind`.
 * The bad record goes to a random line; "truncated" cuts the last line short.
 */
export function malform(kind: Kind, lines: readonly string[], rng: Rng): Corpus {
  const out = lines.map((l) => Buffer.from(l));
  const p = rng.int(0, lines.length - 1);
  const join = (parts: Buffer[], eol = '\n', last = true): Buffer => {
    const chunks: Buffer[] = [];
    parts.forEach((b, i) => {
      chunks.push(b);
      if (i < parts.length - 1 || last) chunks.push(Buffer.from(eol));
    });
    return Buffer.concat(chunks);
  };
  switch (kind) {
    case 'truncated': {
      const n = lines.length;
      const cut = rng.int(2, lines[n - 1].length - 2);
      out[n - 1] = Buffer.from(lines[n - 1].slice(0, cut));
      return { bytes: join(out, '\n', false), badLine: n };
    }
    case 'bom':
      return { bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), join(out)]), badLine: 0 };
    case 'crlf':
      return { bytes: join(out, '\r\n'), badLine: 0 };
    case 'invalid-utf8': {
      const [before, after] = lines[p].split(MARK);
      const bad = [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]][rng.int(0, 3)];
      out[p] = Buffer.concat([Buffer.from(before), Buffer.from(bad), Buffer.from(after)]);
      return { bytes: join(out), badLine: p + 1 };
    }
    case 'deep': {
      const depth = rng.int(1_000, 20_000);
      out[p] = Buffer.from(withMember(lines[p], `"deep":${'['.repeat(depth)}${']'.repeat(depth)}`));
      return { bytes: join(out), badLine: p + 1 };
    }
    case 'huge':
      out[p] = Buffer.from(replaceMark(lines[p], 'x'.repeat(rng.int(FUZZ_MAX_LINE_BYTES + 1, 4 * FUZZ_MAX_LINE_BYTES))));
      return { bytes: join(out), badLine: p + 1 };
    case 'nan':
      out[p] = Buffer.from(withMember(lines[p], `"nan":${['NaN', 'Infinity', '-Infinity'][rng.int(0, 2)]}`));
      return { bytes: join(out), badLine: p + 1 };
    case 'big-number':
      out[p] = Buffer.from(withMember(lines[p], `"big":1e999`));
      return { bytes: join(out), badLine: p + 1 };
    case 'dup-id': {
      out.splice(p + 1, 0, Buffer.from(lines[p]));
      return { bytes: join(out), badLine: p + 2 };
    }
    case 'step-token':
      out[p] = Buffer.from(replaceMark(lines[p], 'ok <extra_0> then'));
      return { bytes: join(out), badLine: p + 1 };
  }
}
