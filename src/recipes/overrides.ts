import YAML from 'yaml';
import type { z } from 'zod';
import { RecipeSchema } from './schema.js';

/**
 * `--set key.path=value` overrides. The value is a string on the command line; its type comes
 * from the schema at that key: numbers and booleans are parsed, lists are split on commas (or
 * written as YAML `[a, b]`), objects are read as YAML. An unknown key is an error that lists
 * the keys that exist there.
 */
export interface Override {
  path: string[];
  /** The raw text after '=', or an already typed value (sweeps pass typed values). */
  value: unknown;
}

export function parseOverride(text: string): Override {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`--set ${text}: expected key.path=value`);
  const key = text.slice(0, eq).trim();
  const path = key.split('.');
  if (path.some((p) => p === '')) throw new Error(`--set ${text}: empty key segment in "${key}"`);
  return { path, value: text.slice(eq + 1) };
}

type AnySchema = z.core.$ZodType;

function def(schema: AnySchema): Record<string, unknown> & { type: string } {
  return (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
}

/** Strips optional/default/prefault/nullable/readonly wrappers and preprocessing. */
function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    const d = def(s);
    if (['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional'].includes(d.type)) s = d.innerType as AnySchema;
    // z.preprocess(fn, schema) is a pipe from a transform into the schema that types the value.
    else if (d.type === 'pipe') s = (def(d.in as AnySchema).type === 'transform' ? d.out : d.in) as AnySchema;
    else return s;
  }
}

/**
 * The keys of a mapping, by name. A union of mappings (labels: one per method) offers every
 * member's keys; a key that several members share has the same type in each.
 */
function keysOf(schema: AnySchema): Record<string, AnySchema> | null {
  const d = def(schema);
  if (d.type === 'object') return d.shape as Record<string, AnySchema>;
  if (d.type !== 'union') return null;
  const members = (d.options as AnySchema[]).map((option) => keysOf(unwrap(option)));
  if (members.some((m) => m === null)) return null;
  return Object.assign({}, ...members.reverse()) as Record<string, AnySchema>;
}

/** The schema of the value at `path`, or an error naming the first unknown segment. */
export function schemaAt(path: readonly string[], root: AnySchema = RecipeSchema): AnySchema {
  let s = unwrap(root);
  for (let i = 0; i < path.length; i++) {
    const shape = keysOf(s);
    if (!shape) throw new Error(`${path.slice(0, i).join('.')} is not a mapping, cannot set ${path.join('.')}`);
    const next = shape[path[i]];
    if (!next) {
      const where = i === 0 ? 'the top level' : path.slice(0, i).join('.');
      throw new Error(`unknown key ${path.join('.')} (keys under ${where}: ${Object.keys(shape).join(', ')})`);
    }
    s = unwrap(next);
  }
  return s;
}

/** Parses command-line text as the type the schema expects there. */
export function coerceValue(text: string, schema: AnySchema, key: string): unknown {
  const s = unwrap(schema);
  const d = def(s);
  switch (d.type) {
    case 'number': {
      const n = Number(text.trim());
      if (text.trim() === '' || !Number.isFinite(n)) throw new Error(`--set ${key}=${text}: expected a number`);
      return n;
    }
    case 'boolean': {
      const t = text.trim().toLowerCase();
      if (['true', 'yes', 'on', '1'].includes(t)) return true;
      if (['false', 'no', 'off', '0'].includes(t)) return false;
      throw new Error(`--set ${key}=${text}: expected true or false`);
    }
    case 'string':
    case 'enum':
    case 'literal':
      return text;
    case 'array': {
      if (text.trim().startsWith('[')) return YAML.parse(text);
      if (text.trim() === '') return [];
      return text.split(',').map((part) => coerceValue(part.trim(), d.element as AnySchema, key));
    }
    case 'tuple': {
      if (text.trim().startsWith('[')) return YAML.parse(text);
      const items = d.items as AnySchema[];
      const parts = text.split(',');
      if (parts.length !== items.length) throw new Error(`--set ${key}=${text}: expected ${items.length} comma-separated values`);
      return parts.map((part, i) => coerceValue(part.trim(), items[i], key));
    }
    case 'union': {
      // The first option that accepts the value read as its own type wins (e.g. 0.5 | "auto").
      for (const option of d.options as AnySchema[]) {
        try {
          const v = coerceValue(text, option, key);
          const check = (option as unknown as z.ZodType).safeParse(v);
          if (check.success) return v;
        } catch {
          // try the next option
        }
      }
      return YAML.parse(text);
    }
    default:
      return YAML.parse(text);
  }
}

function setAt(target: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path;
  const out = { ...target };
  if (rest.length === 0) {
    out[head] = value;
  } else {
    const child = out[head];
    out[head] = setAt(typeof child === 'object' && child !== null && !Array.isArray(child) ? (child as Record<string, unknown>) : {}, rest, value);
  }
  return out;
}

/** Applies overrides in order to a raw (unvalidated) recipe object; returns a new object. */
export function applyOverrides(raw: Record<string, unknown>, overrides: readonly Override[]): Record<string, unknown> {
  let out = raw;
  for (const o of overrides) {
    const key = o.path.join('.');
    const schema = schemaAt(o.path);
    const value = typeof o.value === 'string' ? coerceValue(o.value, schema, key) : o.value;
    out = setAt(out, o.path, value);
  }
  return out;
}
