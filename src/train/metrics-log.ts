import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * metrics.jsonl of a run: one JSON object per line (train and dev records). Train records carry
 * the mean over the steps since the previous record, tokens-weighted, as HF Trainer logs the
 * mean loss since the last log: a single step's loss swings with its batch's length and errors.
 */
export class MetricsLog {
  constructor(private readonly file: string) {}

  /** Drops lines of steps after `step` (left by a run that was killed after its last checkpoint). */
  truncateAfter(step: number): void {
    if (!existsSync(this.file)) return;
    const kept = readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((line) => {
        if (line.trim() === '') return false;
        try {
          const rec = JSON.parse(line) as { step?: number };
          return rec.step === undefined || rec.step <= step;
        } catch {
          return false; // a line cut by a kill
        }
      });
    writeFileSync(this.file, kept.map((l) => l + '\n').join(''));
  }

  write(record: Record<string, unknown>): void {
    appendFileSync(this.file, JSON.stringify(record) + '\n');
  }
}

/** Tokens-weighted running means of per-step values between two log records. */
export class IntervalMean {
  private sums = new Map<string, number>();
  private weight = 0;
  private count = 0;

  add(values: Record<string, number>, tokens: number): void {
    const w = Math.max(tokens, 1);
    for (const [k, v] of Object.entries(values)) this.sums.set(k, (this.sums.get(k) ?? 0) + v * w);
    this.weight += w;
    this.count += 1;
  }

  /** The means since the last take (and how many steps they cover); resets. */
  take(): { means: Record<string, number>; steps: number } {
    const means: Record<string, number> = {};
    for (const [k, s] of this.sums) means[k] = this.weight > 0 ? s / this.weight : NaN;
    const steps = this.count;
    this.sums = new Map();
    this.weight = 0;
    this.count = 0;
    return { means, steps };
  }
}
