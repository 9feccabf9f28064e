/** Arithmetic of the sim world: the four operations, number formatting and equation parsing. */

export type OpSymbol = '+' | '-' | '*' | '/';
export const OP_SYMBOLS: readonly OpSymbol[] = ['+', '-', '*', '/'];

/** One operation of a problem's chain: value <- value (symbol) operand. */
export interface SimOp {
  symbol: OpSymbol;
  operand: number;
}

/**
 * Gold values are integers, but a wrong running value can make a later division inexact; the
 * policy then writes a decimal, so every value is kept to 4 decimals to stay comparable.
 */
export function roundValue(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

export function applyOp(value: number, symbol: OpSymbol, operand: number): number {
  switch (symbol) {
    case '+':
      return roundValue(value + operand);
    case '-':
      return roundValue(value - operand);
    case '*':
      return roundValue(value * operand);
    case '/':
      return operand === 0 ? NaN : roundValue(value / operand);
  }
}

export function sameValue(a: number, b: number): boolean {
  return Math.abs(a - b) < 1e-6;
}

export function formatValue(x: number): string {
  return String(roundValue(x));
}

/** An equation written in a step: `a (symbol) b = result`. */
export interface Equation {
  a: number;
  symbol: OpSymbol;
  b: number;
  result: number;
}

const NUMBER = String.raw`-?\d+(?:\.\d+)?`;
const EQUATION = new RegExp(String.raw`(${NUMBER})\s*([+\-*/×÷])\s*(${NUMBER})\s*=\s*(${NUMBER})`, 'g');

/** The last `a op b = r` equation in a step (the one its conclusion rests on), or null. */
export function parseEquation(step: string): Equation | null {
  let last: RegExpExecArray | null = null;
  for (const m of step.matchAll(EQUATION)) last = m;
  if (!last) return null;
  const raw = last[2];
  const symbol: OpSymbol = raw === '×' ? '*' : raw === '÷' ? '/' : (raw as OpSymbol);
  return { a: Number(last[1]), symbol, b: Number(last[3]), result: Number(last[4]) };
}

/** The content of the last `\boxed{...}` in a text, or null. */
export function lastBoxed(text: string): string | null {
  const i = text.lastIndexOf('\\boxed{');
  if (i < 0) return null;
  let depth = 0;
  for (let j = i + 6; j < text.length; j++) {
    if (text[j] === '{') depth++;
    else if (text[j] === '}' && --depth === 0) return text.slice(i + 7, j).trim();
  }
  return null;
}

/** All numbers in a text, in order (thousands separators removed). */
export function numbersIn(text: string): number[] {
  return (text.match(/-?\d[\d,]*(?:\.\d+)?/g) ?? []).map((s) => Number(s.replace(/,/g, ''))).filter(Number.isFinite);
}

/** Digits of the integer part: a rough measure of how hard a number is to work with. */
export function digits(x: number): number {
  return Math.max(1, String(Math.floor(Math.abs(x))).length);
}
