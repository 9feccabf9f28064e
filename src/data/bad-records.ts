import { JsonlWriter, RecordError } from './jsonl.js';

/** How many bad records a failing read reports before it throws. */
export const MAX_REPORTED_PROBLEMS = 5;
/** How far past the first bad record a failing read keeps looking for more to report. */
const LOOKAHEAD_RECORDS = 10_000;

/** What a command with an --on-bad-record option advises. */
export const SKIP_FLAG_REMEDY = 'Fix them, or pass --on-bad-record skip to write them to a rejects file and go on.';

/** A read stopped by bad records: the first one's location, and all found in the report. */
export class BadRecordsError extends RecordError {
  override name = 'BadRecordsError';
  /** `remedy`: what the message advises (SKIP_FLAG_REMEDY where the command offers --on-bad-record skip). */
  constructor(readonly problems: RecordError[], truncatedSearch: boolean, remedy: string = SKIP_FLAG_REMEDY) {
    const first = problems[0];
    super(first.file, first.line, first.field, first.reason, first.unit);
    const more = truncatedSearch ? ` (search stopped after ${problems.length}; there may be more)` : '';
    this.message = `${problems.length} bad record${problems.length === 1 ? '' : 's'}${more}:\n${problems
      .map((p) => `  ${p.message}`)
      .join('\n')}\n${remedy}`;
  }
}

export interface BadRecordOptions {
  /** 'fail' (default): stop at bad records, reporting the first few; 'skip': write them to rejectsPath. */
  onBadRecord?: 'fail' | 'skip';
  /** Side file for rejected records (JSONL with the reason); default "<input>.rejects.jsonl". */
  rejectsPath?: string;
  /** Called once per rejected record in skip mode (e.g. to print a warning). */
  onReject?: (err: RecordError) => void;
  /** What the error advises, for callers whose way to skip is not the --on-bad-record flag (default: that flag). */
  remedy?: string;
}

/**
 * The fail/skip policy every reader shares. Fail: after the first bad record nothing more is
 * passed on, the next records are only checked so the error can list the first few problems.
 * Skip: each bad record goes to the rejects file (opened on the first one) with its location
 * and reason, and is counted.
 */
export class BadRecordPolicy {
  readonly problems: RecordError[] = [];
  rejected = 0;
  rejectsPath?: string;
  private rejects?: JsonlWriter;
  private sinceFirstProblem = 0;

  constructor(
    private readonly input: string,
    private readonly opts: BadRecordOptions,
  ) {}

  /**
   * Whether the caller offers skipping: only a caller that passes onBadRecord (a command with
   * --on-bad-record) is told to advise it; `eval processbench` and the like have no such option.
   */
  private get skippable(): boolean {
    return this.opts.onBadRecord !== undefined;
  }

  /** The advice of this read's errors: the caller's own, else the flag where the command has it. */
  private get remedy(): string {
    return this.opts.remedy ?? (this.skippable ? SKIP_FLAG_REMEDY : 'Fix them, or remove them from the input.');
  }

  /** True once a failing read has seen a bad record: callers stop passing records on. */
  get failing(): boolean {
    return this.problems.length > 0;
  }

  /** Call for every record read; ends a failing read once it has looked far enough ahead. */
  countRecord(): void {
    if (!this.failing) return;
    if (++this.sinceFirstProblem > LOOKAHEAD_RECORDS) throw new BadRecordsError(this.problems, true, this.remedy);
  }

  /** Handles one bad record (its raw value goes to the rejects file). */
  async reject(err: RecordError, raw: unknown): Promise<void> {
    if ((this.opts.onBadRecord ?? 'fail') === 'skip') {
      if (!this.rejects) {
        this.rejectsPath = this.opts.rejectsPath ?? `${this.input}.rejects.jsonl`;
        this.rejects = await JsonlWriter.open(this.rejectsPath);
      }
      await this.rejects.write({ file: err.file, [err.unit]: err.line, field: err.field ?? null, reason: err.reason, record: raw });
      this.rejected++;
      this.opts.onReject?.(err);
      return;
    }
    this.problems.push(err);
    if (this.problems.length >= MAX_REPORTED_PROBLEMS) throw new BadRecordsError(this.problems, true, this.remedy);
  }

  /** At the end of the input: throws the collected problems of a failing read. */
  finish(): void {
    if (this.failing) throw new BadRecordsError(this.problems, false, this.remedy);
  }

  /**
   * Puts the rejects file in place when the read finished (`completed`); a read that failed or
   * was abandoned leaves no rejects file (nor replaces an earlier one).
   */
  async close(completed: boolean): Promise<void> {
    if (completed) await this.rejects?.close();
    else await this.rejects?.abort();
  }
}
