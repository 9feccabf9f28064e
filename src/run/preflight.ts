import { existsSync } from 'node:fs';
import type { Recipe } from '../recipes/schema.js';
import { recipePath } from './context.js';

/** Inputs a recipe names that are not on disk; the run stops before any stage (exit 1). */
export class MissingInputError extends Error {
  override name = 'MissingInputError';
}

/**
 * Checks every file and directory the recipe reads (data, tokenizer, pretrained model, real
 * benchmarks) before a stage starts, so a long run never dies hours in on a missing path, and
 * names all missing ones at once with the key that points at each.
 */
export function checkInputs(recipe: Recipe, baseDir: string): void {
  const wanted: [key: string, path: string | undefined, hint: string][] = [
    ['data.path', recipe.data?.source === 'file' ? recipe.data.path : undefined, 'the step samples to label or train on'],
    ['tokenizer.path', recipe.tokenizer?.kind === 'file' ? recipe.tokenizer.path : undefined, 'a directory with tokenizer.json'],
    ['model.path', recipe.model?.init === 'pretrained' ? recipe.model.path : undefined, 'a model directory (config.json + safetensors)'],
    ['eval.processbench.path', recipe.eval?.processbench?.path, 'ProcessBench: prmkit data get processbench'],
    ...(recipe.eval?.bon?.candidates ?? []).map((c, i) => [`eval.bon.candidates[${i}]`, c, 'a Best-of-N candidates file'] as [string, string, string]),
  ];
  const missing = wanted
    .filter(([, path]) => path !== undefined)
    .map(([key, path, hint]) => ({ key, abs: recipePath({ baseDir }, path as string), hint }))
    .filter(({ abs }) => !existsSync(abs));
  if (missing.length > 0) {
    throw new MissingInputError(
      `recipe ${recipe.name}: missing input${missing.length > 1 ? 's' : ''}:\n${missing.map((m) => `  ${m.key}: ${m.abs} does not exist (${m.hint})`).join('\n')}`,
    );
  }
}
