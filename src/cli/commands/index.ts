import type { CommandModule } from 'yargs';
import { dataCommand } from './data.js';
import { evalCommand } from './eval.js';
import { exportCommand } from './export.js';
import { gradeCommand } from './grade.js';
import { labelCommand } from './label.js';
import { planCommand } from './plan.js';
import { reportCommand } from './report.js';
import { runCommand } from './run.js';
import { scoreCommand } from './score.js';
import { searchCommand } from './search.js';
import { serveCommand } from './serve.js';
import { simCommand } from './sim.js';
import { sweepCommand } from './sweep.js';

// Each command lives in its own module; register it here, one line each.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  dataCommand,
  evalCommand,
  scoreCommand,
  labelCommand,
  simCommand,
  gradeCommand,
  runCommand,
  planCommand,
  exportCommand,
  serveCommand,
  searchCommand,
  sweepCommand,
  reportCommand,
];
