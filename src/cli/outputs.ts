import { stat } from 'node:fs/promises';
import { dataFiles } from '../data/read.js';
import { findOutputOverInput } from '../util/durable-fs.js';
import { UsageError } from './errors.js';

/** A folder input stands for the data files in it; a missing path for nothing (the read reports it). */
async function expandInput(path: string): Promise<string[]> {
  try {
    if ((await stat(path)).isDirectory()) return [path, ...(await dataFiles(path).catch(() => []))];
  } catch {
    return [];
  }
  return [path];
}

/**
 * Refuses (exit 2) a command whose output is one of its inputs, by name, symlink or hard link:
 * checked before anything is opened for writing, so the input is never truncated or replaced.
 * Undefined entries (options not given) are ignored.
 */
export async function refuseOutputOverInput(inputs: readonly (string | undefined)[], outputs: readonly (string | undefined)[]): Promise<void> {
  const expanded: string[] = [];
  for (const input of inputs) if (input !== undefined) expanded.push(...(await expandInput(input)));
  const clash = await findOutputOverInput(
    expanded,
    outputs.filter((o): o is string => o !== undefined),
  );
  if (clash) {
    const how = clash.input === clash.output ? '' : ' (the same file under another name or link)';
    throw new UsageError(`the output ${clash.output} is the input ${clash.input}${how}; write to another file`);
  }
}
