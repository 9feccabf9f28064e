import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { share } from '../../util/format.js';
import { refuseOutputOverInput } from '../outputs.js';
import { gradeFile } from '../../math/grade-file.js';
import { DEFAULT_REL_TOL, DEFAULT_TIMEOUT_MS, shutdownCas } from '../../math/index.js';

interface GradeArgs {
  input: string;
  out: string;
  'response-field'?: string;
  'answer-field'?: string;
  choices: boolean;
  'choices-field': string;
  'rel-tol': number;
  'timeout-ms': number;
  'on-bad-record': 'fail' | 'skip';
}

export const gradeCommand: CommandModule<object, GradeArgs> = {
  command: 'grade',
  describe: 'Extract final answers from responses and grade them against gold answers (adds "extracted" and "correct")',
  builder: (y: Argv) =>
    y
      .option('input', { type: 'string', demandOption: true, describe: 'JSONL file, one record per line' })
      .option('out', { type: 'string', demandOption: true, describe: 'output JSONL: each record plus "extracted" and "correct"' })
      .option('response-field', { type: 'string', describe: 'field with the response (string or array of strings; dotted path allowed). Default: first of response, responses, code, output, ...' })
      .option('answer-field', { type: 'string', describe: 'field with the gold answer ("#### N" and boxed solutions are read). Default: first of answer, gt, gold, final_answer, ...' })
      .option('choices', { type: 'boolean', default: false, describe: 'multiple choice: extract a letter; gold is a letter or 0-based option index' })
      .option('choices-field', { type: 'string', default: 'choices', describe: 'field with the option texts (with --choices)' })
      .option('rel-tol', { type: 'number', default: DEFAULT_REL_TOL, describe: 'relative tolerance for non-integer numbers' })
      .option('timeout-ms', { type: 'number', default: DEFAULT_TIMEOUT_MS, describe: 'deadline of each symbolic check (an overrun counts as incorrect)' })
      .option('on-bad-record', { choices: ['fail', 'skip'] as const, default: 'fail' as const, describe: 'stop at the first bad line, or skip and count bad lines' })
      .example('$0 grade --input samples.jsonl --response-field response --answer-field gt --out graded.jsonl', '')
      .example('$0 grade --input mmlu.jsonl --choices --out graded.jsonl', ''),
  handler: async (args) => {
    if (!(args['rel-tol'] >= 0)) throw new UsageError(`--rel-tol must be a non-negative number, got ${args['rel-tol']}`);
    if (!(args['timeout-ms'] > 0)) throw new UsageError(`--timeout-ms must be positive, got ${args['timeout-ms']}`);
    await refuseOutputOverInput([args.input], [args.out]);
    let shown = 0;
    try {
      const s = await gradeFile({
        input: args.input,
        out: args.out,
        responseField: args['response-field'],
        answerField: args['answer-field'],
        choices: args.choices,
        choicesField: args['choices-field'],
        relTol: args['rel-tol'],
        timeoutMs: args['timeout-ms'],
        onBadRecord: args['on-bad-record'],
        onReject: (err) => {
          if (shown++ < 5) console.error(`prmkit: skipped ${err.message}`);
        },
      });
      const correct = share(s.correct, s.responses, { digits: 2, missing: '0.00%' });
      console.log(
        `graded ${s.responses} responses in ${s.records} records: ${s.correct} correct (${correct}), ` +
          `${s.noAnswer} without an answer, ${s.badRecords} bad records skipped; ` +
          `CAS checks ${s.casCalls} (${s.casTimeouts} timed out); ${s.seconds.toFixed(1)} s -> ${args.out}`,
      );
    } finally {
      shutdownCas();
    }
  },
};
