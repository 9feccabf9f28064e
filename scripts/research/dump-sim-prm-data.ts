/**
 * Writes sim training and test data, encoded exactly as prmkit encodes it, for the PyTorch
 * prototype sim_prm_torch.py (how the sim-PRM levers were found quickly; see the README section
 * "The sim base LM"):
 *
 *   node --import tsx scripts/research/dump-sim-prm-data.ts 40000 /tmp/sim-prm-40k.json
 *   python3 scripts/research/sim_prm_torch.py --data /tmp/sim-prm-40k.json --nospace --layers 6 --lmaux 1 --steps 3000 --bs 32
 *
 * Training: N problems of the paper world (recipes/paper/base.yaml), one policy solution each,
 * truth labels (seed 7). Test: the sim step-error set of 2,000 (seed 1001). The tokenizer is the
 * word-level one with separate spaces (the prototype's --nospace drops them), or the one in
 * TOKENIZER_DIR when given (the shipped base LM's, to fine-tune that base in the prototype with
 * --load_hf), or one built with the spaces mode given instead (separate, prefix, prefix-words, drop).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeSample } from '../../src/model/encode.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { buildWordLevelTokenizer, WORD_SPACES_MODES, type WordSpaces } from '../../src/model/word-tokenizer.js';
import { loadRecipe } from '../../src/recipes/load.js';
import { simWorldOptions } from '../../src/run/data-stage.js';
import type { StepSample } from '../../src/data/types.js';
import { simProblems, simProcessBench, simSolutions } from '../../src/sim/world.js';

const [count, out, tokenizerDir] = process.argv.slice(2);
if (!count || !out) {
  console.error('usage: dump-sim-prm-data.ts N_PROBLEMS OUT.json [TOKENIZER_DIR | separate | prefix | prefix-words | drop]');
  process.exit(2);
}
const { recipe } = loadRecipe(fileURLToPath(new URL('../../recipes/paper/base.yaml', import.meta.url)));
const world = simWorldOptions(recipe.data!.world);
const train = simSolutions(simProblems(Number(count), 7, world), 1, 7, world);
const test = simProcessBench(2000, 1001, world);
const corpus = [...train, ...simSolutions(simProblems(3000, 99, world), 1, 99, world)].flatMap((s) => [s.problem, ...s.steps]);
// The third argument is a tokenizer directory, or a word-level spaces mode to build one with.
const spacesModes: readonly string[] = WORD_SPACES_MODES;
const files =
  tokenizerDir && !spacesModes.includes(tokenizerDir)
    ? { tokenizerJson: readFileSync(join(tokenizerDir, 'tokenizer.json'), 'utf8'), tokenizerConfigJson: readFileSync(join(tokenizerDir, 'tokenizer_config.json'), 'utf8') }
    : buildWordLevelTokenizer(corpus, { spaces: (tokenizerDir ?? 'separate') as WordSpaces });
const tokenizer = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
const encoded = (s: StepSample) => {
  const e = encodeSample(tokenizer, s, { maxLength: 512 });
  return { ids: e.inputIds, pos: e.stepPositions, labels: s.labels, fe: s.firstError, kind: (s.meta as { errorKind?: string } | undefined)?.errorKind ?? null };
};
const vocabList = (JSON.parse(files.tokenizerJson) as { model: { vocab: Record<string, number> } }).model.vocab;
writeFileSync(out, JSON.stringify({ vocab: tokenizer.vocabSize, pad: tokenizer.padTokenId, vocabList, train: train.map(encoded), test: test.map(encoded) }));
console.log(`vocabulary ${tokenizer.vocabSize}, ${train.length} training and ${test.length} test samples -> ${out}`);
