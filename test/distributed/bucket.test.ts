import { expect } from 'chai';
import { bucketBytesFromEnv, COLLECTIVE_BUCKET_ENV } from '../../src/distributed/bucket.js';
import { parameterCount, planMemory } from '../../src/train/memory-plan.js';
import { parseHfConfig } from '../../src/model/config.js';

describe('distributed/bucket: the all-reduce bucket size', () => {
  it('is 64 MiB by default and PRMKIT_COLLECTIVE_BUCKET_MB MiB when set', () => {
    expect(bucketBytesFromEnv({})).to.equal(64 * 1024 * 1024);
    expect(bucketBytesFromEnv({ [COLLECTIVE_BUCKET_ENV]: '16' })).to.equal(16 * 1024 * 1024);
    expect(bucketBytesFromEnv({ [COLLECTIVE_BUCKET_ENV]: '0.5' })).to.equal(512 * 1024);
  });

  it('refuses a size that is not a positive number, naming the variable', () => {
    for (const bad of ['0', '-8', 'big']) expect(() => bucketBytesFromEnv({ [COLLECTIVE_BUCKET_ENV]: bad })).to.throw(`${COLLECTIVE_BUCKET_ENV}=${bad}: expected a positive number of MiB`);
  });

  it('sets the reduction buckets of the memory plan: two buckets, and unsharded one more of the largest gradient', () => {
    const cfg = parseHfConfig({ model_type: 'qwen2', hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, vocab_size: 1000 }, 'test');
    const largest = 4 * parameterCount(cfg).embedding;
    const plan = (shardOptimizer: 'none' | 'states', bucketBytes: number) =>
      planMemory(cfg, { rows: 2, tokens: 64 }, { recompute: true, workers: 2, shardOptimizer, bucketBytes }).bytes.collective_transient;
    expect(plan('none', 1 << 20)).to.equal(2 * (1 << 20) + largest);
    expect(plan('states', 1 << 20)).to.equal(2 * (1 << 20));
    expect(plan('states', 1 << 24)).to.equal(2 * (1 << 24));
    expect(planMemory(cfg, { rows: 2, tokens: 64 }, { recompute: true }).bytes.collective_transient).to.equal(0);
  });
});
