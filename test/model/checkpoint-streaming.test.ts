import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { loadPrm, loadWeightsInto, savePrmCheckpoint } from '../../src/model/checkpoint.js';
import { initPrm, prmParamSpecs, type PrmModel } from '../../src/model/prm.js';
import { SafetensorsReader } from '../../src/model/safetensors.js';

/**
 * Checkpoints at real size stream tensor by tensor: a tensor is read and written in row chunks
 * (a 151,936 x 3,584 f32 embedding is 2.2 GB, past what one read or one JS array should hold),
 * and weights past the shard size go into Hugging Face shards with an index. Here the chunk and
 * shard sizes are set tiny so that a small model takes every one of those paths.
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const GQA = fileURLToPath(new URL('../fixtures/model/qwen2-gqa', import.meta.url));

function variableData(model: PrmModel): Map<string, Float32Array> {
  return new Map([...model.variables].map(([name, v]) => [name, v.dataSync() as Float32Array]));
}

function expectSame(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...b.keys()]).to.deep.equal([...a.keys()]);
  for (const [name, data] of a) expect(Buffer.from(b.get(name)!.buffer).equals(Buffer.from(data.buffer)), name).to.equal(true);
}

describe('model checkpoints streamed in chunks and shards', function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => {
    await selectBackend('cpu', { log: () => {} });
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'prmkit-stream-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes shards of at most the shard size with an index, in chunks of a few rows, and reads them back bit for bit', async () => {
    const { model, files } = await loadPrm(GQA);
    const specs = prmParamSpecs(model.config);
    const embedBytes = specs[0].hfShape[0] * specs[0].hfShape[1] * 4;
    const out = join(dir, 'sharded');
    // Shards smaller than the embedding: it gets a shard of its own; chunks of ~3 rows.
    const maxShardBytes = Math.floor(embedBytes / 2);
    await savePrmCheckpoint(model, out, { ...files, maxShardBytes, chunkBytes: 3 * specs[0].hfShape[1] * 4 });
    const names = readdirSync(out).sort();
    const shards = names.filter((n) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(n));
    expect(shards.length).to.be.at.least(3);
    expect(names).to.include('model.safetensors.index.json');
    expect(names).to.not.include('model.safetensors');
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(Object.keys(index.weight_map).sort()).to.deep.equal(specs.map((s) => s.name).sort());
    expect(index.metadata.total_size).to.equal(specs.reduce((a, s) => a + s.hfShape.reduce((x, y) => x * y, 1) * 4, 0));
    for (const shard of shards) {
      const reader = await SafetensorsReader.open(join(out, shard));
      let bytes = 0;
      for (const n of reader.names()) bytes += reader.entry(n)!.byteLength;
      await reader.close();
      // Only a tensor larger than the limit may exceed it, alone in its shard.
      if (bytes > maxShardBytes) expect(readerCount(join(out, shard))).to.equal(1);
    }
    // Read back in chunks of 2 rows: the same variables.
    const again = await loadPrm(out, { chunkBytes: 2 * 4 });
    expectSame(variableData(model), variableData(again.model));
    model.dispose();
    again.model.dispose();
  });

  it('loadWeightsInto streams a checkpoint into live variables (what --resume does) without new tensors', async () => {
    const { model, files } = await loadPrm(GQA);
    const out = join(dir, 'ckpt');
    await savePrmCheckpoint(model, out, { ...files, maxShardBytes: 20_000 });
    const other = initPrm(model.config, 7);
    const before = tf.memory().numTensors;
    const variables = [...other.variables.values()];
    await loadWeightsInto(other, out, { chunkBytes: 64 });
    expect(tf.memory().numTensors).to.equal(before);
    expect([...other.variables.values()]).to.deep.equal(variables);
    expectSame(variableData(model), variableData(other));
    model.dispose();
    other.dispose();
  });

  it('a sharded checkpoint loads in PyTorch transformers with the same logits', async function () {
    const py = spawnSync('python3', ['-c', 'import torch, transformers, safetensors'], { stdio: 'ignore' });
    if (py.status !== 0) {
      console.warn('    skipped: python3 with torch, transformers and safetensors is not available');
      this.skip();
    }
    const { model, files } = await loadPrm(GQA);
    const out = join(dir, 'py');
    await savePrmCheckpoint(model, out, { ...files, maxShardBytes: 30_000, chunkBytes: 256 });
    expect(readdirSync(out)).to.include('model.safetensors.index.json');
    const batch = JSON.parse(readFileSync(join(GQA, 'reference.json'), 'utf8')).batches[0];
    const idsFile = join(dir, 'ids.json');
    writeFileSync(idsFile, JSON.stringify({ input_ids: batch.input_ids, attention_mask: batch.attention_mask }));
    const r = spawnSync('python3', ['scripts/fixtures/make_golden_qwen2.py', '--check', out, '--ids', idsFile], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(result.loading_problems).to.deep.equal({});
    const ids = tf.tensor2d(batch.input_ids, undefined, 'int32') as tf.Tensor2D;
    const mask = tf.tensor2d(batch.attention_mask, undefined, 'int32') as tf.Tensor2D;
    const ours = model.logits(ids, mask).arraySync();
    tf.dispose([ids, mask]);
    batch.attention_mask.forEach((row: number[], b: number) =>
      row.forEach((m, t) => {
        if (m) for (let k = 0; k < 2; k++) expect(Math.abs(ours[b][t][k] - result.logits[b][t][k])).to.be.below(1e-4);
      }),
    );
    model.dispose();
  });
});

function readerCount(file: string): number {
  const raw = readFileSync(file);
  const len = Number(raw.readBigUInt64LE(0));
  return Object.keys(JSON.parse(raw.subarray(8, 8 + len).toString('utf8'))).filter((k) => k !== '__metadata__').length;
}
