import { z } from 'zod';

/**
 * The `sweep:` block a recipe may carry, read by `prmkit sweep` and ignored by `prmkit run`.
 * Keys are dotted recipe paths (`labels.threshold`); their values are typed by the recipe
 * schema when the sweep expands them, so a bad value fails before any run starts.
 *
 *   sweep:
 *     variants:              # named points, each a set of key: value (optional)
 *       mc-hard: { labels.method: mc, train.label_mode: hard }
 *       truth:   { labels.method: truth }
 *     grid:                  # every combination of the lists (optional)
 *       data.problems: [500, 1000]
 *     random: { n: 4, seed: 0 }   # optional: a seeded sample of the points instead of all
 *
 * Points = variants x grid (either may be absent).
 */
export const SweepSchema = z.strictObject({
  /** Named points, each a map of dotted recipe keys to values. */
  variants: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'variant names use letters, digits, ".", "_" and "-"'), z.record(z.string(), z.unknown())).optional(),
  /** Dotted recipe keys with lists of values: every combination is a point. */
  grid: z.record(z.string(), z.array(z.unknown()).min(1)).optional(),
  /** A seeded sample of the points instead of all. */
  random: z
    .strictObject({
      /** Points sampled. */
      n: z.number().int().positive(),
      /** Seed of the sample. */
      seed: z.number().int().default(0),
    })
    .optional(),
});

export type SweepConfig = z.infer<typeof SweepSchema>;
