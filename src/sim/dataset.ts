/** `prmkit sim generate`: the sim world's data sets written to a directory. */
import { join } from 'node:path';
import { orderFields } from '../data/prmkit.js';
import { toProcessBenchRecord } from '../data/processbench.js';
import type { StepSample } from '../data/types.js';
import { writeJsonlRecords } from '../data/write.js';
import { share } from '../util/format.js';
import { formatValue } from './arith.js';
import { goldSteps } from './steps.js';
import { simBonCandidates, simProblems, simProcessBench, simSolutions, type SimTruth, type SimWorldOptions } from './world.js';

export interface SimDatasetOptions {
  out: string;
  problems: number;
  seed: number;
  /** Policy solutions per problem in solutions.jsonl. */
  perProblem: number;
  /** Samples in the step-error set. */
  benchSize: number;
  bonProblems: number;
  bonN: number;
  world?: SimWorldOptions;
}

/**
 * Writes, all as functions of the seed:
 *   problems.jsonl          gold solutions as StepSamples (answer, gold steps, all labels 1)
 *   solutions.jsonl         policy solutions as StepSamples; labels/firstError are the truth, also in meta.truth
 *   processbench/sim.jsonl  ProcessBench-format step-error set, half with an error
 *   bon/sim.jsonl           Best-of-N candidates: {id, problem, answer, responses}
 */
export async function writeSimDataset(opts: SimDatasetOptions): Promise<{ files: string[]; summary: string }> {
  const world = opts.world ?? {};
  const problems = simProblems(opts.problems, opts.seed, world);
  const files = {
    problems: join(opts.out, 'problems.jsonl'),
    solutions: join(opts.out, 'solutions.jsonl'),
    processbench: join(opts.out, 'processbench', 'sim.jsonl'),
    bon: join(opts.out, 'bon', 'sim.jsonl'),
  };
  const gold: StepSample[] = problems.map((p) => {
    const steps = goldSteps(p);
    return {
      id: p.id,
      problem: p.text,
      steps,
      answer: formatValue(p.answer),
      labels: steps.map(() => 1),
      firstError: -1,
      source: 'sim-gold',
      meta: { ops: p.ops, values: p.values },
    };
  });
  await writeJsonlRecords(files.problems, gold, orderFields);

  const solutions = simSolutions(problems, opts.perProblem, opts.seed, world);
  await writeJsonlRecords(files.solutions, solutions, orderFields);

  const bench = simProcessBench(opts.benchSize, opts.seed + 1, world);
  await writeJsonlRecords(files.processbench, bench, (s) =>
    toProcessBenchRecord({ ...s, meta: { subset: 'sim', generator: 'sim-policy', final_answer_correct: s.meta.final_answer_correct, error_kind: s.meta.errorKind } }),
  );

  const bon = simBonCandidates(opts.bonProblems, opts.bonN, opts.seed + 2, world);
  await writeJsonlRecords(files.bon, bon, (c) => ({ id: c.id, problem: c.problem, answer: c.answer, responses: c.responses }));

  return { files: Object.values(files), summary: describeSolutions(solutions, problems.length, bench.length, bon.length, opts.bonN) };
}

function describeSolutions(solutions: readonly StepSample[], nProblems: number, benchSize: number, bonProblems: number, bonN: number): string {
  const kinds = new Map<string, number>();
  let errors = 0;
  let recovered = 0;
  for (const s of solutions) {
    const t = s.meta.truth as SimTruth;
    if (t.firstError === -1) continue;
    errors++;
    if (t.finalAnswerCorrect) recovered++;
    kinds.set(t.errorKind ?? 'unknown', (kinds.get(t.errorKind ?? 'unknown') ?? 0) + 1);
  }
  const byKind = [...kinds.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
  return [
    `sim: ${nProblems} problems, ${solutions.length} policy solutions; ${errors} (${share(errors, solutions.length)}) with a process error (${byKind || 'none'})`,
    `  right final answer after a wrong step: ${recovered} (${share(recovered, errors)} of the erroneous)`,
    `  step-error set: ${benchSize} samples (half erroneous); Best-of-N set: ${bonProblems} problems x ${bonN} responses`,
  ].join('\n');
}
