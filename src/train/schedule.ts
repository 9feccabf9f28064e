/**
 * Learning-rate schedules: linear warmup, then cosine, linear or constant. The multipliers are
 * the formulas of transformers' get_cosine_schedule_with_warmup,
 * get_linear_schedule_with_warmup and get_constant_schedule_with_warmup, indexed the same way:
 * optimizer step k (0-based) runs with baseLr * multiplier(k), so the first step of a warmup
 * runs at lr 0 exactly as a torch LambdaLR does.
 */
export type ScheduleKind = 'cosine' | 'linear' | 'constant';

export interface ScheduleOptions {
  kind: ScheduleKind;
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Cosine only: number of half-waves (0.5 = decay from the peak to 0 once). */
  numCycles?: number;
}

export function lrMultiplier(step: number, opts: Omit<ScheduleOptions, 'baseLr'>): number {
  const { warmupSteps, totalSteps } = opts;
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  switch (opts.kind) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    case 'cosine': {
      const cycles = opts.numCycles ?? 0.5;
      const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
    }
    default: {
      const never: never = opts.kind;
      throw new Error(`unknown schedule kind ${String(never)}`);
    }
  }
}

/** The learning rate for optimizer step `step` (0-based). */
export function learningRateAt(step: number, opts: ScheduleOptions): number {
  return opts.baseLr * lrMultiplier(step, opts);
}

/** Warmup steps from a ratio of the total, rounded up as transformers' TrainingArguments does. */
export function warmupStepsFromRatio(totalSteps: number, ratio: number): number {
  return Math.ceil(totalSteps * ratio);
}
