/**
 * docs/recipe-reference.md, generated from the recipe schema itself: every key with its type and
 * default read off the zod schema at run time, and its meaning from the doc comment the schema's
 * source gives it, so the page cannot drift from what `prmkit run` accepts.
 *
 *   node --import tsx scripts/docs/recipe-reference.ts           # rewrite the page
 *   node --import tsx scripts/docs/recipe-reference.ts --check   # exit 1 when the page is stale
 *
 * Doc comments are not kept by zod, so they are read from the TypeScript source with the
 * compiler's parser (no hand-kept list of descriptions): each object literal handed to
 * z.strictObject/z.object is matched to the runtime object schema with the same set of keys.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { z } from 'zod';
import { RecipeSchema } from '../../src/recipes/schema.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REFERENCE_PAGE = join(repoRoot, 'docs', 'recipe-reference.md');
const SCHEMA_SOURCES = ['src/recipes/schema.ts', 'src/sweep/schema.ts'].map((p) => join(repoRoot, p));

/** The Transformers TrainingArguments / TRL PRMConfig name of a key, where one exists. */
const HF_NAMES: Record<string, string> = {
  seed: '`seed`',
  'train.epochs': '`num_train_epochs`',
  'train.max_steps': '`max_steps`',
  'train.lr': '`learning_rate`',
  'train.schedule': '`lr_scheduler_type`',
  'train.warmup_steps': '`warmup_steps`',
  'train.warmup_ratio': '`warmup_ratio`',
  'train.weight_decay': '`weight_decay`',
  'train.beta1': '`adam_beta1`',
  'train.beta2': '`adam_beta2`',
  'train.eps': '`adam_epsilon`',
  'train.max_grad_norm': '`max_grad_norm`',
  'train.grad_accumulation': '`gradient_accumulation_steps`',
  'train.batch_size': '`per_device_train_batch_size` (x workers: prmkit counts rows over all workers)',
  'train.recompute': '`gradient_checkpointing`',
  'train.group_by_length': '`group_by_length`',
  'train.max_length': '`max_length` (PRMConfig)',
  'train.eval_every': '`eval_steps`',
  'train.save_every': '`save_steps`',
  'train.keep_last': '`save_total_limit`',
  'train.metric': '`metric_for_best_model`',
  'train.final': '`load_best_model_at_end` (best)',
  'train.patience': '`EarlyStoppingCallback(early_stopping_patience)`',
  'train.log_every': '`logging_steps`',
  'train.seed': '`data_seed`',
  'train.dev_fraction': '`test_size` of `train_test_split`',
  'tokenizer.step_token': '`step_separator` (PRMConfig)',
  'model.lora': '`peft_config` (PRMTrainer)',
  'model.lora.r': '`r` (LoraConfig)',
  'model.lora.alpha': '`lora_alpha` (LoraConfig)',
  'model.lora.dropout': '`lora_dropout` (LoraConfig)',
  'model.lora.target_modules': '`target_modules` (LoraConfig)',
};

type Schema = z.core.$ZodType;
type Def = Record<string, unknown> & { type: string };

const defOf = (s: Schema): Def => s._zod.def as unknown as Def;

/** Doc comment text of every key of every object literal in the schema sources, keyed by the literal's sorted key set. */
function docComments(): Map<string, Map<string, string>> {
  const byKeys = new Map<string, Map<string, string>>();
  for (const file of SCHEMA_SOURCES) {
    const text = readFileSync(file, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const namedLiterals = new Map<string, ts.ObjectLiteralExpression>();
    const literals: ts.ObjectLiteralExpression[] = [];
    const visit = (node: ts.Node) => {
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer && ts.isObjectLiteralExpression(node.initializer)) {
        namedLiterals.set(node.name.text, node.initializer);
      }
      if (ts.isObjectLiteralExpression(node)) literals.push(node);
      ts.forEachChild(node, visit);
    };
    visit(source);
    const commentOf = (node: ts.Node): string => {
      const ranges = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
      const docs = ranges.map((r) => text.slice(r.pos, r.end)).filter((c) => c.startsWith('/**'));
      const last = docs.at(-1);
      if (!last) return '';
      return last
        .replace(/^\/\*\*|\*\/$/g, '')
        .split('\n')
        .map((l) => l.replace(/^\s*\* ?/, '').trim())
        .join(' ')
        .replace(/\s+/g, ' ')
        .trim();
    };
    const entries = (lit: ts.ObjectLiteralExpression): [string, string][] =>
      lit.properties.flatMap((p): [string, string][] => {
        if (ts.isSpreadAssignment(p) && ts.isIdentifier(p.expression)) {
          const target = namedLiterals.get(p.expression.text);
          return target ? entries(target) : [];
        }
        if ((ts.isPropertyAssignment(p) || ts.isShorthandPropertyAssignment(p)) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) return [[p.name.text, commentOf(p)]];
        return [];
      });
    for (const lit of literals) {
      const e = entries(lit);
      if (e.length === 0) continue;
      const key = e.map(([k]) => k).sort().join(',');
      const map = byKeys.get(key) ?? new Map<string, string>();
      for (const [k, c] of e) if (c && !map.get(k)) map.set(k, c);
      byKeys.set(key, map);
    }
  }
  return byKeys;
}

/** The schema under optional/default/prefault wrappers, with what the wrappers say. */
function unwrap(schema: Schema): { inner: Schema; optional: boolean; defaultValue?: unknown } {
  let s = schema;
  let optional = false;
  let defaultValue: unknown;
  for (;;) {
    const d = defOf(s);
    if (d.type === 'optional') optional = true;
    else if (d.type === 'default' || d.type === 'prefault') {
      if (defaultValue === undefined) defaultValue = d.defaultValue;
    } else if (d.type === 'pipe') {
      s = d.out as Schema;
      continue;
    } else break;
    s = d.innerType as Schema;
  }
  return { inner: s, optional, defaultValue };
}

function typeText(schema: Schema): string {
  const { inner } = unwrap(schema);
  const d = defOf(inner);
  switch (d.type) {
    case 'number': {
      const checks = ((d.checks as { _zod: { def: Record<string, unknown> } }[] | undefined) ?? []).map((c) => c._zod.def);
      const int = checks.some((c) => c.format === 'safeint');
      const bounds = checks
        .filter((c) => c.check === 'greater_than' || c.check === 'less_than')
        .map((c) => `${c.check === 'greater_than' ? (c.inclusive ? '>=' : '>') : c.inclusive ? '<=' : '<'} ${String(c.value)}`);
      return `${int ? 'integer' : 'number'}${bounds.length ? ` (${bounds.join(', ')})` : ''}`;
    }
    case 'string':
      return d.format === 'url' ? 'URL' : 'string';
    case 'boolean':
      return 'boolean';
    case 'enum':
      return Object.values(d.entries as Record<string, string>).map((v) => `\`${v}\``).join(' \\| ');
    case 'literal':
      return (d.values as unknown[]).map((v) => `\`${String(v)}\``).join(' \\| ');
    case 'union':
      return (d.options as Schema[]).map(typeText).join(' \\| ');
    case 'array':
      return `list of ${typeText(d.element as Schema)}`;
    case 'tuple':
      return `[${(d.items as Schema[]).map(typeText).join(', ')}]`;
    case 'record':
      return 'map';
    case 'object':
      return 'object';
    case 'unknown':
      return 'any';
    default:
      return d.type;
  }
}

function defaultText(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0) return '';
  return `\`${JSON.stringify(value)}\``;
}

interface Row {
  path: string;
  type: string;
  default: string;
  meaning: string;
  hf: string;
}

/** The object shapes a key's value may take (a union of objects, as `labels`, gives several). */
function objectShapes(schema: Schema): Record<string, Schema>[] {
  const { inner } = unwrap(schema);
  const d = defOf(inner);
  if (d.type === 'object') return [d.shape as Record<string, Schema>];
  if (d.type === 'union') return (d.options as Schema[]).flatMap(objectShapes);
  return [];
}

function rowsOf(shape: Record<string, Schema>, prefix: string, docs: Map<string, Map<string, string>>, missing: string[]): Row[] {
  const comments = docs.get(Object.keys(shape).sort().join(',')) ?? new Map<string, string>();
  const rows: Row[] = [];
  for (const [key, schema] of Object.entries(shape)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const meaning = comments.get(key) ?? '';
    if (!meaning) missing.push(path);
    const { optional, defaultValue } = unwrap(schema);
    const nested = objectShapes(schema);
    const isObject = nested.length === 1 && defOf(unwrap(schema).inner).type === 'object';
    rows.push({
      path,
      type: isObject ? 'object' : typeText(schema),
      default: isObject ? '' : defaultText(defaultValue) || (optional ? '(absent)' : '(required)'),
      meaning: meaning.replace(/\|/g, '\\|'),
      hf: HF_NAMES[path] ?? '',
    });
    if (isObject) rows.push(...rowsOf(nested[0], path, docs, missing));
  }
  return rows;
}

const table = (rows: readonly Row[]) =>
  ['| key | type | default | meaning | Transformers / TRL |', '|---|---|---|---|---|', ...rows.map((r) => `| \`${r.path}\` | ${r.type} | ${r.default} | ${r.meaning} | ${r.hf} |`)].join('\n');

/** The page, and the keys the schema's source leaves without a doc comment. */
export function recipeReference(): { markdown: string; undocumented: string[] } {
  const docs = docComments();
  const missing: string[] = [];
  const top = defOf(RecipeSchema as unknown as Schema).shape as Record<string, Schema>;
  const parts = [
    '# Recipe reference',
    '',
    '<!-- Generated by `node --import tsx scripts/docs/recipe-reference.ts` from src/recipes/schema.ts; a test fails when it is stale. -->',
    '',
    'A recipe is a YAML file; a stage runs when its key is present. Every object is strict: a misspelt key is an error that names the nearest valid key. ',
    '`extends:` inherits from other recipes (relative paths resolve against the file that names them); `--set key.path=value` overrides a key on the command line. ',
    'Defaults are filled in and written to `RUN/recipe.resolved.yaml`. "(absent)" means the key may be left out; "(required)" that it must be given where its section is.',
    '',
    '## Top level',
    '',
  ];
  const scalars: Row[] = [];
  const sections: string[] = [];
  const topComments = docs.get(Object.keys(top).sort().join(',')) ?? new Map<string, string>();
  for (const [key, schema] of Object.entries(top)) {
    const shapes = objectShapes(schema);
    const meaning = topComments.get(key) ?? '';
    if (shapes.length === 0) {
      const { optional, defaultValue } = unwrap(schema);
      if (!meaning) missing.push(key);
      scalars.push({ path: key, type: typeText(schema), default: defaultText(defaultValue) || (optional ? '(absent)' : '(required)'), meaning, hf: HF_NAMES[key] ?? '' });
      continue;
    }
    sections.push(`## \`${key}\``, '');
    if (meaning) sections.push(meaning, '');
    if (shapes.length === 1) {
      sections.push(table(rowsOf(shapes[0], key, docs, missing)), '');
    } else {
      // A discriminated union (labels): one table per method.
      for (const shape of shapes) {
        const method = defOf(unwrap(shape.method).inner).values as unknown[] | undefined;
        sections.push(`### \`${key}.method: ${String(method?.[0])}\``, '', table(rowsOf(shape, key, docs, missing)), '');
      }
    }
  }
  parts.push(table(scalars), '', ...sections);
  return { markdown: `${parts.join('\n').trimEnd()}\n`, undocumented: [...new Set(missing)] };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { markdown, undocumented } = recipeReference();
  if (undocumented.length > 0) console.error(`recipe-reference: keys without a doc comment in the schema: ${undocumented.join(', ')}`);
  if (process.argv.includes('--check')) {
    const current = readFileSync(REFERENCE_PAGE, 'utf8');
    if (current !== markdown) {
      console.error(`${REFERENCE_PAGE} is stale: run node --import tsx scripts/docs/recipe-reference.ts`);
      process.exit(1);
    }
  } else {
    writeFileSync(REFERENCE_PAGE, markdown);
    console.error(`wrote ${REFERENCE_PAGE}`);
  }
}
