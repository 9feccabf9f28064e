/**
 * The fast path: answers that are plain numbers (integers, decimals, scientific notation, simple
 * fractions, mixed numbers, percentages) are parsed and compared here without the CAS, so grading
 * thousands of numeric answers takes milliseconds. Anything else returns null and goes to the CAS.
 */

/** Tolerance when one side is written as an integer. */
export const INTEGER_REL_TOL = 1e-9;

export interface PlainNumber {
  value: number;
  /** Exact integer text (sign and digits) when the answer is written as an integer. */
  integer?: bigint;
  /** Written with a percent sign: it may mean its face value or value/100. */
  percent: boolean;
}

const INT = String.raw`-?\d+`;
const DEC = String.raw`-?(?:\d+\.\d*|\.\d+|\d+)`;
const SCI = new RegExp(String.raw`^(${DEC})(?:[eE]([-+]?\d+)|(?:\\times|\\cdot|\*|x)10\^(?:\{([-+]?\d+)\}|([-+]?\d)))$`);
const PLAIN = new RegExp(`^${DEC}$`);
const SLASH = new RegExp(String.raw`^(${INT})/(\d+)$`);
const FRAC = new RegExp(String.raw`^(-?)\\frac\{(${DEC})\}\{(${DEC})\}$`);
const NEG_FRAC = new RegExp(String.raw`^\\frac\{(${DEC})\}\{(${DEC})\}$`);
const MIXED = new RegExp(String.raw`^(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}$`);

/** Parses a normalised answer as a plain number, or returns null. */
export function parsePlainNumber(s: string): PlainNumber | null {
  let text = s;
  let percent = false;
  if (text.endsWith('%')) {
    percent = true;
    text = text.slice(0, -1);
  }
  if (text.startsWith('+')) text = text.slice(1);
  if (PLAIN.test(text)) {
    const value = Number(text);
    if (!Number.isFinite(value)) return null;
    const integer = /^-?\d+$/.test(text) ? BigInt(text) : undefined;
    return { value, integer, percent };
  }
  let m = SCI.exec(text);
  if (m) {
    const exponent = Number(m[2] ?? m[3] ?? m[4]);
    const value = Number(m[1]) * 10 ** exponent;
    return Number.isFinite(value) ? { value, percent } : null;
  }
  m = SLASH.exec(text);
  if (m) return ratio(Number(m[1]), Number(m[2]), percent);
  m = MIXED.exec(text);
  if (m) {
    const den = Number(m[4]);
    if (den === 0) return null;
    const magnitude = Number(m[2]) + Number(m[3]) / den;
    return { value: m[1] === '-' ? -magnitude : magnitude, percent };
  }
  m = FRAC.exec(text);
  if (m) {
    const r = ratio(Number(m[2]), Number(m[3]), percent);
    if (r && m[1] === '-') r.value = -r.value;
    return r;
  }
  m = NEG_FRAC.exec(text);
  if (m) return ratio(Number(m[1]), Number(m[2]), percent);
  return null;
}

function ratio(num: number, den: number, percent: boolean): PlainNumber | null {
  if (den === 0 || !Number.isFinite(num) || !Number.isFinite(den)) return null;
  return { value: num / den, percent };
}

/**
 * Relative closeness |a-b| <= relTol * max(|a|,|b|); exact zero only matches (near-)zero.
 */
export function closeEnough(a: number, b: number, relTol: number, absTol = 0): boolean {
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  return Math.abs(a - b) <= relTol * Math.max(Math.abs(a), Math.abs(b)) + absTol;
}

/**
 * Two plain numbers match when:
 * - both are written as integers: exactly equal (a relative tolerance would make 123456 equal
 *   123457);
 * - one written as an integer: within 1e-9 relative (1000 accepts 1000.0 or 1e3, not 999.99);
 * - otherwise within the relative tolerance (0.333 vs 1/3 at relTol 1e-3);
 * - a percentage matches either its face value or its value / 100: gold 50 accepts "50%", gold 0.5
 *   accepts "50%", but 0.5 and 50 never match each other.
 */
export function numbersMatch(a: PlainNumber, b: PlainNumber, relTol: number): boolean {
  if (a.integer !== undefined && b.integer !== undefined && !a.percent && !b.percent) return a.integer === b.integer;
  const tol = a.integer !== undefined || b.integer !== undefined ? INTEGER_REL_TOL : relTol;
  const readings = (n: PlainNumber) => (n.percent ? [n.value, n.value / 100] : [n.value]);
  for (const x of readings(a)) for (const y of readings(b)) if (closeEnough(x, y, tol)) return true;
  return false;
}
