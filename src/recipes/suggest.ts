import { closest, distance } from 'fastest-levenshtein';
import type { z } from 'zod';

/**
 * "did you mean ...?" for misspelt recipe keys: the valid keys at the place of an unknown key
 * are read off the schema itself, so the suggestions can never name a key the schema lacks.
 */

type AnySchema = z.core.$ZodType;

/** The object schemas a value at this schema may be (through optional, default, preprocess and unions). */
function objectShapes(schema: AnySchema): Record<string, AnySchema>[] {
  const def = schema._zod.def as unknown as Record<string, unknown> & { type: string };
  switch (def.type) {
    case 'object':
      return [def.shape as Record<string, AnySchema>];
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
      return objectShapes(def.innerType as AnySchema);
    case 'pipe':
      return [...objectShapes(def.in as AnySchema), ...objectShapes(def.out as AnySchema)];
    case 'union':
      return (def.options as AnySchema[]).flatMap(objectShapes);
    default:
      return [];
  }
}

/** The keys an object at `path` below `root` may have; empty when the path leads to no object. */
export function keysAt(root: AnySchema, path: readonly PropertyKey[]): string[] {
  let shapes = objectShapes(root);
  for (const part of path) {
    if (typeof part !== 'string') return [];
    shapes = shapes.flatMap((shape) => (Object.hasOwn(shape, part) ? objectShapes(shape[part]) : []));
  }
  return [...new Set(shapes.flatMap((shape) => Object.keys(shape)))];
}

/** The valid key nearest to a misspelt one, when it is near enough to be a likely typo. */
export function nearestKey(unknownKey: string, validKeys: readonly string[]): string | null {
  if (validKeys.length === 0) return null;
  const best = closest(unknownKey, [...validKeys]);
  // A third of the key's length in edits: catches "grad_accumulations" and "learning_rat", not unrelated words.
  return distance(unknownKey, best) <= Math.max(2, Math.ceil(unknownKey.length / 3)) ? best : null;
}
