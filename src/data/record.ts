import { RecordError } from './jsonl.js';

/** Where a record came from: used by every adapter to name file:line (or row) in errors. */
export interface RecordLocation {
  file: string;
  /** 1-based line (JSONL, JSON array element start) or row (Arrow, Parquet). */
  line: number;
  unit: 'line' | 'row';
}

/** Throws a RecordError located at `loc` for `field`. */
export function fail(loc: RecordLocation, field: string | undefined, reason: string): never {
  throw new RecordError(loc.file, loc.line, field, reason, loc.unit);
}

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** The record itself must be a JSON object. */
export function asObject(value: unknown, loc: RecordLocation): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail(loc, undefined, `expected a JSON object, got ${describeType(value)}`);
  }
  return value as Record<string, unknown>;
}

export function requireString(rec: Record<string, unknown>, field: string, loc: RecordLocation): string {
  const value = rec[field];
  if (value === undefined) fail(loc, field, 'missing');
  if (typeof value !== 'string') fail(loc, field, `expected a string, got ${describeType(value)}`);
  return value;
}

export function optionalString(rec: Record<string, unknown>, field: string, loc: RecordLocation): string | undefined {
  const value = rec[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') fail(loc, field, `expected a string, got ${describeType(value)}`);
  return value;
}

export function requireStringArray(rec: Record<string, unknown>, field: string, loc: RecordLocation): string[] {
  const value = rec[field];
  if (value === undefined) fail(loc, field, 'missing');
  if (!Array.isArray(value)) fail(loc, field, `expected an array of strings, got ${describeType(value)}`);
  value.forEach((item, i) => {
    if (typeof item !== 'string') fail(loc, `${field}[${i}]`, `expected a string, got ${describeType(item)}`);
  });
  return value as string[];
}

export function requireInteger(rec: Record<string, unknown>, field: string, loc: RecordLocation): number {
  const value = rec[field];
  if (value === undefined) fail(loc, field, 'missing');
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    fail(loc, field, `expected an integer, got ${typeof value === 'number' ? value : describeType(value)}`);
  }
  return value;
}

/** An id may arrive as a string or an integer (HF datasets often use int ids); it is kept as text. */
export function idText(value: unknown, field: string, loc: RecordLocation): string {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  if (value === undefined) return fail(loc, field, 'missing');
  return fail(loc, field, `expected a non-empty string or integer id, got ${describeType(value)}`);
}

/** Fields of `rec` other than `known`, kept so a round trip loses nothing. */
export function extraFields(rec: Record<string, unknown>, known: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rec)) if (!known.includes(key)) out[key] = value;
  return out;
}
