import { expect } from 'chai';
import { readSafetensors } from '../../src/model/safetensors.js';

/** Largest absolute difference between two safetensors files' tensors (same names and shapes required). */
export async function maxSafetensorsDifference(a: string, b: string): Promise<number> {
  const [x, y] = await Promise.all([readSafetensors(a), readSafetensors(b)]);
  expect([...y.keys()].sort()).to.deep.equal([...x.keys()].sort());
  let worst = 0;
  for (const [name, t] of x) {
    const u = y.get(name)!;
    expect(u.shape, name).to.deep.equal(t.shape);
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i] - u.data[i]));
  }
  return worst;
}
