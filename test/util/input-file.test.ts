import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRegularFile, InputFileError, readInputFile, readInputFileSync } from '../../src/util/input-file.js';

/** The one reader of whole input files: regular files only (no device, FIFO, directory), within a size cap. */
describe('input files: regular, and read with a cap', function () {
  this.timeout(10_000);
  const dir = mkdtempSync(join(tmpdir(), 'input-file-'));
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  const big = join(dir, 'big');
  writeFileSync(big, Buffer.alloc(2048, 97));

  const cases: [string, string, RegExp][] = [
    ['a device that never ends', '/dev/zero', /\/dev\/zero: is a device, expected a regular file/],
    ['a FIFO (no writer: its open would block)', fifo, /pipe: is a FIFO \(named pipe\), expected a regular file/],
    ['a directory', dir, /is a directory/],
    ['a missing file', join(dir, 'nope'), /nope: no such file/],
    ['a file over the cap', big, /big: 2048 bytes or more, larger than the 1024 bytes/],
  ];
  for (const [what, path, message] of cases) {
    it(`refuses ${what}, naming it (sync and async)`, async () => {
      expect(() => readInputFileSync(path, 1024)).to.throw(InputFileError, message);
      const err = await readInputFile(path, 1024).then(() => null, (e: Error) => e);
      expect(err).to.be.instanceOf(InputFileError);
      expect(err!.message).to.match(message);
    });
  }

  it('reads a regular file within the cap, and checkRegularFile gives its size', async () => {
    expect(readInputFileSync(big, 4096).length).to.equal(2048);
    expect((await readInputFile(big, 2048)).length).to.equal(2048);
    expect(await checkRegularFile(big)).to.equal(2048);
    expect(await checkRegularFile(fifo).then(() => null, (e: Error) => e.message)).to.match(/FIFO/);
  });
});
