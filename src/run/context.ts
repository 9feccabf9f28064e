import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataParallel } from '../distributed/join.js';
import type { Recipe } from '../recipes/schema.js';
import { writeFileAtomic } from '../util/durable-fs.js';

/** What every stage of a run sees. */
export interface RunContext {
  runDir: string;
  recipe: Recipe;
  /** Directory of the recipe file: relative paths in the recipe resolve against it. */
  baseDir: string;
  resume: boolean;
  /** With resume: train from step 0 when no checkpoint verifies (else that is an error). */
  restart?: boolean;
  backend: string;
  log: (line: string) => void;
  progress: boolean;
  /** Data-parallel training (TF_CONFIG names a cluster): this worker's place in it. */
  parallel?: DataParallel;
}

export type StageName = 'data' | 'labels' | 'train' | 'eval' | 'report';
export const STAGES: readonly StageName[] = ['data', 'labels', 'train', 'eval', 'report'];

export interface StageMarker<T> {
  stage: StageName;
  completed_at: string;
  seconds: number;
  summary: T;
}

function markerPath(runDir: string, stage: StageName): string {
  return join(runDir, 'stages', `${stage}.json`);
}


export function readStageMarker<T>(runDir: string, stage: StageName): StageMarker<T> | null {
  const path = markerPath(runDir, stage);
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, 'utf8')) as StageMarker<T>;
}

/**
 * Runs a stage once: its marker (RUN/stages/<stage>.json, holding the stage's summary) is
 * written when it completes, and a resumed run returns the recorded summary instead of redoing
 * the stage.
 */
export async function runStage<T>(ctx: RunContext, stage: StageName, fn: () => Promise<T>): Promise<T> {
  const done = readStageMarker<T>(ctx.runDir, stage);
  if (done) {
    ctx.log(`stage ${stage}: finished earlier (${done.completed_at}), not redone`);
    return done.summary;
  }
  ctx.log(`stage ${stage}: start`);
  const t0 = Date.now();
  const summary = await fn();
  const seconds = (Date.now() - t0) / 1000;
  mkdirSync(join(ctx.runDir, 'stages'), { recursive: true });
  const marker: StageMarker<T> = { stage, completed_at: new Date().toISOString(), seconds, summary };
  await writeFileAtomic(markerPath(ctx.runDir, stage), JSON.stringify(marker, null, 2) + '\n');
  ctx.log(`stage ${stage}: done in ${seconds.toFixed(1)} s`);
  return summary;
}

/** Resolves a path from the recipe against the recipe's directory. */
export function recipePath(ctx: Pick<RunContext, 'baseDir'>, path: string): string {
  return path.startsWith('/') ? path : join(ctx.baseDir, path);
}
