/**
 * Consensus filtering (the paper §3.1): keep a sample only when MC estimation and the judge
 * put the first error at the same step ("no error" from both agrees too). Kept samples carry
 * the MC record (its hard labels); dropped ones are written with the reason.
 */
import { openStepSamples } from '../data/read.js';
import { orderFields } from '../data/prmkit.js';
import { JsonlWriter } from '../data/jsonl.js';
import type { StepSample } from '../data/types.js';
import { progressBar } from '../util/progress.js';
import { countJsonlLines } from './run.js';
import { AgreementTally, LabelQualityTally, type AgreementRow, type LabelQuality } from './stats.js';

export type DropReason = 'disagree' | 'judge_unparsable' | 'no_judge_label' | 'no_mc_label';

export interface ConsensusOptions {
  /** MC-labelled StepSamples (label mc output). */
  mc: string;
  /** Judge-labelled StepSamples (label judge output). */
  judge: string;
  out: string;
  /** Where dropped samples go, each with meta.consensus.reason (default: not written). */
  dropped?: string;
  progress?: boolean;
}

export interface ConsensusStats {
  command: 'consensus';
  /** Distinct sample ids in either input. */
  samples: number;
  kept: number;
  dropped: number;
  retention: number | null;
  dropReasons: Record<DropReason, number>;
  /** MC (a) vs judge (b) first-error positions, over samples both labelled. */
  agreement: { n: number; agreement: number | null; byPosition: Record<string, AgreementRow> };
  /** Each labeling's quality; against the truth when samples carry meta.truth. */
  quality: { mc: LabelQuality; judge: LabelQuality; consensus: LabelQuality };
}

const emptyQuality = () => new LabelQualityTally().result();

interface JudgeSummary {
  firstError: number | undefined;
  status: string;
  seen: boolean;
}

/** `prmkit label consensus` as a function. Both inputs are prmkit JSONL written by label mc / label judge. */
export async function consensus(opts: ConsensusOptions): Promise<ConsensusStats> {
  // The judge side is held as id -> verdict only (a few bytes a sample), the MC side streamed.
  const judged = new Map<string, JudgeSummary>();
  const judgeQuality = new LabelQualityTally();
  for await (const s of openStepSamples(opts.judge, { format: 'prmkit' }).samples) {
    if (judged.has(s.id)) throw new Error(`${opts.judge}: sample id "${s.id}" appears twice`);
    const status = String((s.meta.judge as { status?: unknown } | undefined)?.status ?? (s.firstError === undefined ? 'unlabelled' : 'ok'));
    judged.set(s.id, { firstError: s.firstError, status, seen: false });
    judgeQuality.add(s);
  }

  // Both files are written atomically (JsonlWriter): a failure leaves neither, nor a partial one.
  const kept = await JsonlWriter.open(opts.out);
  const dropped = opts.dropped ? await JsonlWriter.open(opts.dropped) : undefined;
  const stats: ConsensusStats = {
    command: 'consensus',
    samples: 0,
    kept: 0,
    dropped: 0,
    retention: null,
    dropReasons: { disagree: 0, judge_unparsable: 0, no_judge_label: 0, no_mc_label: 0 },
    agreement: { n: 0, agreement: null, byPosition: {} },
    quality: { mc: emptyQuality(), judge: emptyQuality(), consensus: emptyQuality() },
  };
  const agreement = new AgreementTally();
  const mcQuality = new LabelQualityTally();
  const keptQuality = new LabelQualityTally();
  const seenMc = new Set<string>();
  const bar = progressBar('label consensus', /\.(jsonl|ndjson)$/i.test(opts.mc) ? await countJsonlLines(opts.mc) : 0, { enabled: opts.progress });
  const drop = async (record: StepSample, reason: DropReason, mcFirstError: number | undefined, judgeFirstError: number | undefined) => {
    stats.dropped++;
    stats.dropReasons[reason]++;
    await dropped?.write(orderFields({ ...record, meta: { ...record.meta, consensus: { reason, mcFirstError: mcFirstError ?? null, judgeFirstError: judgeFirstError ?? null } } }));
  };
  try {
    for await (const s of openStepSamples(opts.mc, { format: 'prmkit' }).samples) {
      bar.tick();
      if (seenMc.has(s.id)) throw new Error(`${opts.mc}: sample id "${s.id}" appears twice`);
      seenMc.add(s.id);
      stats.samples++;
      mcQuality.add(s);
      const j = judged.get(s.id);
      if (j) j.seen = true;
      agreement.add(s.firstError, j?.firstError);
      if (s.firstError === undefined) await drop(s, 'no_mc_label', undefined, j?.firstError);
      else if (!j) await drop(s, 'no_judge_label', s.firstError, undefined);
      else if (j.firstError === undefined) await drop(s, j.status === 'unparsable' ? 'judge_unparsable' : 'no_judge_label', s.firstError, undefined);
      else if (j.firstError !== s.firstError) await drop(s, 'disagree', s.firstError, j.firstError);
      else {
        const record: StepSample = { ...s, meta: { ...s.meta, consensus: { mcFirstError: s.firstError, judgeFirstError: j.firstError } } };
        await kept.write(orderFields(record));
        keptQuality.add(record);
        stats.kept++;
      }
    }
    // Judged samples MC never labelled (e.g. its run failed on them).
    const missing = [...judged.entries()].filter(([, j]) => !j.seen).map(([id]) => id);
    if (missing.length > 0) {
      const wanted = new Set(missing);
      for await (const s of openStepSamples(opts.judge, { format: 'prmkit' }).samples) {
        if (!wanted.has(s.id)) continue;
        stats.samples++;
        await drop(s, 'no_mc_label', undefined, s.firstError);
      }
    }
    await kept.close();
    await dropped?.close();
  } catch (e) {
    await kept.abort();
    await dropped?.abort();
    throw e;
  } finally {
    bar.stop();
  }
  stats.retention = stats.samples > 0 ? stats.kept / stats.samples : null;
  stats.agreement = agreement.table();
  stats.quality = { mc: mcQuality.result(), judge: judgeQuality.result(), consensus: keptQuality.result() };
  return stats;
}
