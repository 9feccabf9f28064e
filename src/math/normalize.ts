import { parsePlainNumber } from './numbers.js';

/**
 * String normalisation of final answers, applied before any comparison. Each rule is its own
 * exported function so tests can pin it; `normalizeAnswer` chains them in a fixed order (the order
 * matters: units are recognised before `\text{}` is unwrapped, spaces are removed last).
 */

const UNICODE_TO_LATEX: [RegExp, string][] = [
  [/[\u2212\u2013\u2014]/g, '-'], // minus sign, en and em dashes
  [/\u00d7/g, '\\times '],
  [/\u00f7/g, '\\div '],
  [/\u00b7|\u22c5/g, '\\cdot '],
  [/\u03c0/g, '\\pi '],
  [/\u221e/g, '\\infty '],
  [/\u221a/g, '\\sqrt'],
  [/\u2264/g, '\\le '],
  [/\u2265/g, '\\ge '],
  [/\u00b1/g, '\\pm '],
  [/\u00a0/g, ' '],
];

export function unicodeToLatex(s: string): string {
  for (const [re, to] of UNICODE_TO_LATEX) s = s.replace(re, to);
  return s;
}

/** `$x$`, `$$x$$`, `\(x\)`, `\[x\]` around the whole answer. */
export function stripMathDelimiters(s: string): string {
  let prev: string;
  do {
    prev = s;
    s = s.trim();
    const m =
      /^\$\$([\s\S]*)\$\$$/.exec(s) ??
      /^\$((?:\\[\s\S]|[^$\\])*)\$$/.exec(s) ??
      /^\\\(([\s\S]*)\\\)$/.exec(s) ??
      /^\\\[([\s\S]*)\\\]$/.exec(s);
    if (m) s = m[1];
  } while (s !== prev);
  return s;
}

/** Index just past the brace group opening at `open` (s[open] === '{'), or -1 when unbalanced. */
export function matchBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      i++; // `\{` and `\}` are literal braces, not grouping
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
  }
  return -1;
}

/** `\boxed{x}` / `\fbox{x}` wrapping the whole answer (gold answers sometimes carry it). */
export function stripBoxedWrapper(s: string): string {
  for (;;) {
    const m = /^\s*\\(?:boxed|fbox)\s*\{/.exec(s);
    if (!m) return s;
    const open = m[0].length - 1;
    const end = matchBrace(s, open);
    if (end < 0 || s.slice(end).trim() !== '') return s;
    s = s.slice(open + 1, end - 1);
  }
}

/** `\left`, `\right`, `\big(`-style sizing and `\displaystyle`: layout only. */
export function removeSizing(s: string): string {
  return s
    .replace(/\\(?:left|right)(?![a-zA-Z])\s*\.?/g, '')
    .replace(/\\(?:big|Big|bigg|Bigg)[lrm]?(?![a-zA-Z])/g, '')
    .replace(/\\(?:displaystyle|textstyle|scriptstyle)(?![a-zA-Z])/g, '');
}

/** `\!`, `\,`, `\;`, `\:`, `\ `, `\quad`, `~`: spacing only. */
export function removeSpacing(s: string): string {
  // (?<!\\): the `\\` row break of a matrix followed by a space is not the `\ ` space command.
  return s.replace(/(?<!\\)\\[!,;: ]/g, ' ').replace(/\\q?quad(?![a-zA-Z])/g, ' ').replace(/~/g, ' ');
}

/** `\dfrac`/`\tfrac` -> `\frac`; `\frac12` -> `\frac{1}{2}`; `\sqrt2` -> `\sqrt{2}`. */
export function canonicalFractions(s: string): string {
  return s
    .replace(/\\[dt]frac(?![a-zA-Z])/g, '\\frac')
    .replace(/\\frac\s*(\d)\s*(\d)/g, '\\frac{$1}{$2}')
    .replace(/\\frac\s*(\d)\s*(?=\{)/g, '\\frac{$1}')
    .replace(/\\frac\s*(\{(?:[^{}]|\{[^{}]*\})*\})\s*(\d)/g, '\\frac$1{$2}')
    .replace(/\\sqrt\s*(\d+|[a-zA-Z])/g, '\\sqrt{$1}');
}

/** Degree marks: `^\circ`, `^{\circ}`, `\degree`, `°`. */
export function removeDegrees(s: string): string {
  return s
    .replace(/\^\s*\{\s*\\circ\s*\}/g, '')
    .replace(/\^\s*\\circ(?![a-zA-Z])/g, '')
    .replace(/\\circ(?![a-zA-Z])/g, '')
    .replace(/\\degree(?![a-zA-Z])/g, '')
    .replace(/\u00b0/g, '');
}

/** Dollar signs used as currency (`\$5`, `$5`, `5 $`); math delimiters are gone by now. */
export function removeDollars(s: string): string {
  return s.replace(/\\\$/g, '').replace(/\$/g, '');
}

/** `\%` -> `%` so numbers can carry a percent mark. */
export function canonicalPercent(s: string): string {
  return s.replace(/\\%/g, '%').replace(/\s*%/g, '%');
}

/** Unit words (lower case, singular and plural) that may trail a numeric answer. */
const UNIT_WORDS = new Set(
  (
    'mm cm dm m km meter meters metre metres centimeter centimeters centimetre centimetres millimeter ' +
    'millimeters kilometer kilometers kilometre kilometres in inch inches ft foot feet yd yard yards mi ' +
    'mile miles nm um mg g kg gram grams kilogram kilograms milligram milligrams lb lbs pound pounds oz ' +
    'ounce ounces ton tons tonne tonnes l ml liter liters litre litres milliliter milliliters gallon ' +
    'gallons gal quart quarts pint pints cup cups s sec secs second seconds ms min mins minute minutes h ' +
    'hr hrs hour hours day days week weeks month months year years yr yrs dollar dollars cent cents euro ' +
    'euros usd unit units sq square cubic degree degrees deg rad radian radians mph kph kmh hz khz mhz ' +
    'ghz n newton newtons j joule joules kj w watt watts kw kwh v volt volts a amp amps ohm ohms pa kpa ' +
    'atm k kelvin c f percent points point times people students pages'
  ).split(' '),
);

const TEXT_COMMANDS = 'text|textbf|textit|textrm|textsf|texttt|mathrm|mathbf|mathit|mathsf|mbox|boldsymbol|bm';

function isUnitPhrase(words: string): boolean {
  const parts = words
    .toLowerCase()
    .replace(/[.]$/, '')
    .split(/[\s/*^.\-]+|(?<=\D)(?=\d)/)
    .filter((w) => w !== '' && !/^\d+$/.test(w) && w !== 'per');
  return parts.length > 0 && parts.every((w) => UNIT_WORDS.has(w));
}

/**
 * Drops a unit written after the answer: a trailing `\text{...}`/`\mathrm{~m}` group of words
 * (with an optional `^2`; any words, `5\text{ apples}` too), or plain unit words from UNIT_WORDS
 * (`18 dollars`, `5 cm^2`). Only when something numeric-looking precedes it, so `\text{yes}` alone
 * or a lone variable stays.
 */
export function removeUnits(s: string): string {
  for (let guard = 0; guard < 4; guard++) {
    const before = s;
    const textTail = new RegExp(`\\\\(?:${TEXT_COMMANDS})\\s*\\{([^{}]*)\\}\\s*(?:\\^\\s*\\{?\\s*\\d\\s*\\}?)?\\s*\\.?\\s*$`).exec(s);
    if (textTail) {
      const head = s.slice(0, textTail.index).trimEnd();
      const words = textTail[1].replace(/[~\s]+/g, ' ').trim();
      const wordy = /^[A-Za-z][A-Za-z .\/]*$/.test(words);
      if (head !== '' && /[\d})%]$|\\pi$/.test(head) && wordy && (isUnitPhrase(words) || words.length >= 2)) {
        s = head;
      }
    }
    const plainTail = /(?<=[\d})%]|\\pi)\s*([A-Za-z][A-Za-z .\/]*?(?:\^\s*\{?\d\}?)?)\s*\.?\s*$/.exec(s);
    if (plainTail && isUnitPhrase(plainTail[1].replace(/\^\s*\{?\d\}?/, ''))) {
      const head = s.slice(0, plainTail.index).trimEnd();
      // A one-letter unit is ambiguous with a variable ("10-4 n", "5m"): only after a spaced plain
      // number ("5 m").
      const oneLetter = /^[A-Za-z]$/.test(plainTail[1].replace(/\^.*$/, '').trim());
      const spaced = /\s/.test(s.charAt(plainTail.index));
      if (head !== '' && (!oneLetter || (spaced && parsePlainNumber(head) !== null))) s = head;
    }
    if (s === before) break;
  }
  return s;
}

/** `\text{or}`/`and` between answers become list commas: `2 \text{ or } 3` -> `2,3`. */
export function alternativesToList(s: string): string {
  return s
    .replace(new RegExp(`\\s*\\\\(?:${TEXT_COMMANDS})\\s*\\{\\s*(?:or|and|,)\\s*\\}\\s*`, 'g'), ',')
    .replace(/(?<=[\d}])\s+(?:or|and)\s+(?=[-\d\\])/g, ',');
}

/** `\text{...}`, `\mathrm{...}`, `\textbf{...}` and friends: keep the content. */
export function unwrapTextCommands(s: string): string {
  const re = new RegExp(`\\\\(?:${TEXT_COMMANDS}|operatorname)\\s*\\{`, 'g');
  for (;;) {
    re.lastIndex = 0;
    const m = re.exec(s);
    if (!m) return s;
    const open = m.index + m[0].length - 1;
    const end = matchBrace(s, open);
    if (end < 0) return s;
    const inner = s.slice(open + 1, end - 1);
    const isOperator = m[0].startsWith('\\operatorname');
    // \operatorname{lcm} must stay a command for the CAS; plain text content is kept as text.
    s = s.slice(0, m.index) + (isOperator ? `\\${inner.trim()} ` : inner) + s.slice(end);
  }
}

const GREEK =
  'alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu|nu|xi|rho|sigma|tau|phi|varphi|chi|psi|omega';

/**
 * `x=`, `y =`, `a_1 =`, `f(x) =`, `\theta =`, `x \in` before the answer. Only when that is the only
 * `=` so equations like `3x+4y=0` are kept whole.
 */
export function stripVariablePrefix(s: string): string {
  const m = new RegExp(
    `^\\s*(?:[a-zA-Z](?:_\\{?[a-zA-Z0-9]+\\}?)?|\\\\(?:${GREEK})|[a-zA-Z]\\s*\\(\\s*[a-zA-Z]\\s*\\))\\s*(=|\\\\in(?![a-zA-Z]))\\s*`,
  ).exec(s);
  if (!m) return s;
  const rest = s.slice(m[0].length);
  if (m[1] === '=' && /(?<![<>\\])=/.test(rest)) return s;
  return rest === '' ? s : rest;
}

/** `1,000,000` -> `1000000` when the whole answer is one grouped number; `1{,}000` always. */
export function removeThousandsSeparators(s: string): string {
  s = s.replace(/(\d)\{,\}(?=\d{3})/g, '$1');
  const grouped = /^(-?)(\d{1,3}(?:,\d{3})+)(\.\d+)?(%?)$/.exec(s.trim());
  if (grouped) return grouped[1] + grouped[2].replace(/,/g, '') + (grouped[3] ?? '') + grouped[4];
  // "1 000 000" with thin spaces turned into plain spaces.
  const spaced = /^(-?)(\d{1,3}(?: \d{3})+)(\.\d+)?(%?)$/.exec(s.trim());
  if (spaced) return spaced[1] + spaced[2].replace(/ /g, '') + (spaced[3] ?? '') + spaced[4];
  return s;
}

/** `.5` -> `0.5`, `2.50` -> `2.5`, `3.0` -> `3`, `3.` -> `3`, in every decimal of the answer. */
export function canonicalDecimals(s: string): string {
  return s
    .replace(/(?<![\d.])\.(\d)/g, '0.$1')
    .replace(/(\d+\.\d*?)0+(?![\d])/g, '$1')
    .replace(/(\d)\.(?![\d])/g, '$1');
}

/** `3 1/2` -> `3\frac{1}{2}` (a mixed number, kept apart from `31/2` before spaces go). */
export function markMixedNumbers(s: string): string {
  return s.replace(/^(-?\d+)\s+(\d+)\s*\/\s*(\d+)$/, '$1\\frac{$2}{$3}');
}

/**
 * Removes whitespace except where a LaTeX command name would run into a following letter
 * (`\sin x` must not become `\sinx`).
 */
export function removeSpaces(s: string): string {
  return s.replace(/\s+/g, ' ').replace(/ (?![a-zA-Z])|(?<!\\[a-zA-Z]+) /g, '').trim();
}

export function removeTrailingPeriod(s: string): string {
  return s.replace(/[.\s]+$/, '').replace(/^[.\s]+(?!\d)/, '');
}

/** The full normalisation chain; idempotent. */
export function normalizeAnswer(raw: string): string {
  let s = unicodeToLatex(raw);
  s = stripMathDelimiters(s);
  s = stripBoxedWrapper(s);
  s = stripMathDelimiters(s);
  s = s.replace(/\n/g, ' ');
  s = removeSizing(s);
  s = removeSpacing(s);
  s = canonicalFractions(s);
  s = removeDegrees(s);
  s = removeDollars(s);
  s = canonicalPercent(s);
  s = removeTrailingPeriod(s);
  s = alternativesToList(s);
  s = removeUnits(s);
  s = unwrapTextCommands(s);
  s = removeUnits(s);
  s = removeTrailingPeriod(s);
  s = stripVariablePrefix(s);
  s = markMixedNumbers(s.trim());
  s = removeThousandsSeparators(s);
  s = removeSpaces(s);
  s = canonicalDecimals(s);
  s = removeTrailingPeriod(s);
  return s;
}
