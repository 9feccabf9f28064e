import { InputFileError, readInputFileSync } from '../util/input-file.js';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { RecipeSchema, type Recipe } from './schema.js';
import { applyOverrides, parseOverride, type Override } from './overrides.js';
import { keysAt, nearestKey } from './suggest.js';

/** A recipe that failed to load or validate; the message names the file and every bad key. */
export class RecipeError extends Error {
  override name = 'RecipeError';
}

export interface LoadedRecipe {
  recipe: Recipe;
  /** Every file read, the requested one first, then its ancestors in the order merged. */
  files: string[];
  /** Directory of the requested recipe: relative paths inside the recipe resolve against it. */
  baseDir: string;
}

type Plain = Record<string, unknown>;

function isPlainObject(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Deep merge for `extends`: objects merge key by key, anything else (scalars, lists) in the
 * child replaces the parent's value, and a `null` in the child removes the key (so a child can
 * switch off a stage its parent runs).
 */
export function deepMerge(parent: Plain, child: Plain): Plain {
  const out: Plain = { ...parent };
  for (const [key, value] of Object.entries(child)) {
    if (value === null) delete out[key];
    else if (isPlainObject(value) && isPlainObject(out[key])) out[key] = deepMerge(out[key] as Plain, value);
    else out[key] = value;
  }
  return out;
}

function readYamlObject(file: string): Plain {
  let text: string;
  try {
    text = readInputFileSync(file).toString('utf8');
  } catch (err) {
    if (err instanceof InputFileError) throw new RecipeError(`cannot read recipe ${err.message}`);
    throw new RecipeError(`cannot read recipe ${file}: ${(err as Error).message}`);
  }
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const where = e.linePos?.[0] ? `${file}:${e.linePos[0].line}:${e.linePos[0].col}` : file;
    throw new RecipeError(`${where}: YAML syntax error: ${e.message.split('\n')[0]}`);
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (err) {
    // e.g. an alias bomb ("Excessive alias count"): the file is named like any YAML error.
    throw new RecipeError(`${file}: YAML cannot be loaded: ${(err as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) throw new RecipeError(`${file}: a recipe must be a mapping of keys, got ${Array.isArray(value) ? 'a list' : typeof value}`);
  return value;
}

/** Keys whose values are paths (a string, or a list of them), as dotted paths into a recipe. */
const PATH_KEYS = ['data.path', 'tokenizer.path', 'model.path', 'eval.processbench.path', 'eval.prmbench.path', 'eval.bon.candidates'];

/** A copy of the recipe with every path-valued key (PATH_KEYS) passed through `map`. */
function mapPathKeys(recipe: Plain, map: (path: string) => string): Plain {
  const out = structuredClone(recipe);
  const mapOne = (p: unknown) => (typeof p === 'string' ? map(p) : p);
  for (const key of PATH_KEYS) {
    const parts = key.split('.');
    let node: unknown = out;
    for (const part of parts.slice(0, -1)) node = isPlainObject(node) ? node[part] : undefined;
    const last = parts[parts.length - 1];
    if (!isPlainObject(node) || !(last in node)) continue;
    const value = node[last];
    node[last] = Array.isArray(value) ? value.map(mapOne) : mapOne(value);
  }
  return out;
}

/**
 * Relative paths in a file resolve against that file's folder, so a shared parent such as
 * recipes/sim-base.yaml can name ../checkpoints/... for every recipe that extends it, from any
 * folder: they are rewritten relative to the requested recipe's folder (where run.ts resolves them).
 */
function rebasePaths(own: Plain, fileDir: string, rootDir: string): Plain {
  if (fileDir === rootDir) return own;
  return mapPathKeys(own, (p) => (isAbsolute(p) ? p : relative(rootDir, resolve(fileDir, p)) || '.'));
}

/**
 * A resolved recipe with its relative paths made absolute against `baseDir` (the requested
 * recipe's folder), so that recipes requested from different folders compare equal when they
 * name the same files.
 */
export function absoluteRecipePaths(recipe: Plain, baseDir: string): Plain {
  return mapPathKeys(recipe, (p) => (isAbsolute(p) ? p : resolve(baseDir, p)));
}

/** Reads a recipe file and everything it extends, merged (ancestors first), cycles rejected. */
export function readRecipeTree(file: string, stack: string[] = [], rootDir = dirname(resolve(file))): { raw: Plain; files: string[] } {
  const abs = resolve(file);
  if (stack.includes(abs)) {
    throw new RecipeError(`recipe extends cycle: ${[...stack, abs].join(' -> ')}`);
  }
  const own = rebasePaths(readYamlObject(abs), dirname(abs), rootDir);
  const parents = own.extends === undefined ? [] : Array.isArray(own.extends) ? own.extends : [own.extends];
  let merged: Plain = {};
  const files = [abs];
  for (const parent of parents) {
    if (typeof parent !== 'string') throw new RecipeError(`${abs}: extends: expected a path or a list of paths`);
    const parentPath = isAbsolute(parent) ? parent : resolve(dirname(abs), parent);
    const tree = readRecipeTree(parentPath, [...stack, abs], rootDir);
    merged = deepMerge(merged, tree.raw);
    files.push(...tree.files);
  }
  const { extends: _extends, ...rest } = own;
  return { raw: deepMerge(merged, rest), files };
}

/**
 * One line per problem: `train.lr: expected number, received string`. Unknown keys name the
 * nearest valid key of that place in `schema` (the recipe schema by default).
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[], schema: z.core.$ZodType = RecipeSchema): string {
  return issues
    .map((issue) => {
      const key = issue.path.length === 0 ? '(top level)' : issue.path.map(String).join('.');
      let message = issue.message.replace(/^Invalid input: /, '');
      if (issue.code === 'unrecognized_keys') {
        const valid = keysAt(schema, issue.path);
        const named = issue.keys.map((k) => {
          const near = nearestKey(k, valid);
          return near ? `"${k}" (did you mean ${near}?)` : `"${k}"`;
        });
        message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${named.join(', ')}`;
      }
      return `  ${key}: ${message}`;
    })
    .join('\n');
}

/** Validates a merged recipe object (overrides applied) and fills in defaults. */
export function resolveRecipe(raw: Plain, overrides: readonly (string | Override)[] = [], source = 'recipe'): Recipe {
  let withOverrides: Plain;
  try {
    // A malformed --set is a usage error like an unknown key (exit 2), not a failure.
    const parsed = overrides.map((o) => (typeof o === 'string' ? parseOverride(o) : o));
    withOverrides = applyOverrides(raw, parsed);
  } catch (err) {
    throw new RecipeError(`${source}: ${(err as Error).message}`);
  }
  const result = RecipeSchema.safeParse(withOverrides);
  if (!result.success) throw new RecipeError(`${source}: invalid recipe:\n${formatIssues(result.error.issues)}`);
  return result.data;
}

/**
 * Loads a recipe: reads the YAML and its `extends` chain, applies `--set key.path=value`
 * overrides (typed by the schema), validates and fills defaults.
 */
export function loadRecipe(path: string, overrides: readonly (string | Override)[] = []): LoadedRecipe {
  const { raw, files } = readRecipeTree(path);
  const recipe = resolveRecipe(raw, overrides, path);
  return { recipe, files, baseDir: dirname(resolve(path)) };
}

/** The resolved recipe as YAML, for recipe.resolved.yaml. */
export function recipeToYaml(recipe: Recipe): string {
  return YAML.stringify(recipe, { lineWidth: 0 });
}
