import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c, hparamsOf, writeTensorBoardSummary } from '../../src/report/tb-hparams.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** A python with the tensorboard package: PRMKIT_TB_PYTHON, else python3. */
const python = process.env.PRMKIT_TB_PYTHON ?? 'python3';
const hasTensorBoard = spawnSync(python, ['-c', 'import tensorboard'], { stdio: 'ignore' }).status === 0;

describe('report: TensorBoard hparams and final metrics', function () {
  this.timeout(60_000);

  it('CRC-32C of the standard check string', () => {
    expect(crc32c(Buffer.from('123456789'))).to.equal(0xe3069283);
  });

  it('keeps numbers and booleans of the flattened recipe as such, the rest as text', () => {
    expect(hparamsOf({ 'train.lr': '0.01', 'train.epochs': '3', 'x.on': 'true', name: 'run', 'eval.bon.aggregators': '["min"]', v: '1e-4' })).to.deep.equal({
      'train.lr': 0.01,
      'train.epochs': 3,
      'x.on': true,
      name: 'run',
      'eval.bon.aggregators': '["min"]',
      v: 1e-4,
    });
  });

  it("TensorBoard's own loader reads the hparams session and the final scalars", async function () {
    if (!hasTensorBoard) {
      console.log(`    skipped: ${python} has no tensorboard package (pip install tensorboard, or set PRMKIT_TB_PYTHON)`);
      this.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), 'prmkit-tb-'));
    await writeTensorBoardSummary(dir, {
      hparams: { 'train.lr': 0.01, 'train.schedule': 'cosine', 'train.mixed': false },
      metrics: { 'final/dev_first_error_f1': 61.5, 'final/missing': null, 'final/nan': NaN },
      step: 120,
      startTime: 1_700_000_000_000,
      endTime: 1_700_000_060_000,
    });
    // Written again (a resumed run): replaced, not a second session.
    await writeTensorBoardSummary(dir, {
      hparams: { 'train.lr': 0.01, 'train.schedule': 'cosine', 'train.mixed': false },
      metrics: { 'final/dev_first_error_f1': 62.5 },
      step: 120,
      startTime: 1_700_000_000_000,
      endTime: 1_700_000_060_000,
    });
    expect(readdirSync(dir)).to.have.lengthOf(1);
    const r = spawnSync(python, ['scripts/reference/read_tb_summary.py', dir], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const got = JSON.parse(r.stdout) as { hparams: Record<string, unknown>; status: number; start: number; end: number; scalars: Record<string, [number, number][]> };
    expect(got.hparams).to.deep.equal({ 'train.lr': 0.01, 'train.schedule': 'cosine', 'train.mixed': false });
    expect(got.status).to.equal(1); // STATUS_SUCCESS
    expect(got.start).to.equal(1_700_000_000);
    expect(got.end).to.equal(1_700_000_060);
    expect(got.scalars).to.deep.equal({ 'final/dev_first_error_f1': [[120, 62.5]] });
  });
});
