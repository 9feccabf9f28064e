import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { cpus, platform, release, arch, totalmem, hostname } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo, type BackendInfo } from '../backend/backend.js';
import { writeFileAtomic } from '../util/durable-fs.js';

/** RUN/manifest.json: what ran, on what, from which inputs (sha256 of the data and tokenizer files). */
export interface RunManifest {
  prmkit_version: string;
  git_commit: string | null;
  created_at: string;
  updated_at: string;
  command: string[];
  recipe: { name: string; files: { path: string; sha256: string }[] };
  seed: number;
  backend: BackendInfo;
  machine: { node: string; platform: string; release: string; arch: string; cpu: string; cpus: number; memory_gb: number; hostname: string };
  /** Run-relative path -> sha256, for the inputs and outputs that define the run. */
  hashes: Record<string, string>;
}

/** The package root (the directory of prmkit's package.json), from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'prmkit') return dir;
      } catch {
        // not ours
      }
    }
    dir = dirname(dir);
  }
  throw new Error('cannot find the prmkit package.json');
}

export function prmkitVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || null;
  } catch {
    return null;
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function createManifest(opts: { runDir: string; recipeName: string; recipeFiles: string[]; seed: number; command: string[] }): Promise<RunManifest> {
  const cpuList = cpus();
  const now = new Date().toISOString();
  return {
    prmkit_version: prmkitVersion(),
    git_commit: gitCommit(),
    created_at: now,
    updated_at: now,
    command: opts.command,
    recipe: { name: opts.recipeName, files: await Promise.all(opts.recipeFiles.map(async (f) => ({ path: f, sha256: await sha256File(f) }))) },
    seed: opts.seed,
    backend: backendInfo(),
    machine: {
      node: process.version,
      platform: platform(),
      release: release(),
      arch: arch(),
      cpu: cpuList[0]?.model ?? 'unknown',
      cpus: cpuList.length,
      memory_gb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      hostname: hostname(),
    },
    hashes: {},
  };
}

/** Adds the sha256 of files that exist (run-relative paths) and writes the manifest atomically. */
export async function updateManifest(runDir: string, manifest: RunManifest, files: readonly string[]): Promise<void> {
  for (const f of files) {
    const abs = join(runDir, f);
    if (existsSync(abs)) manifest.hashes[relative(runDir, abs)] = await sha256File(abs);
  }
  manifest.updated_at = new Date().toISOString();
  manifest.backend = backendInfo();
  await writeFileAtomic(join(runDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}
