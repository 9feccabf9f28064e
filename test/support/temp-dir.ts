import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A fresh temporary directory for every test (`each`) or for the whole describe block
 * (`suite`), removed afterwards; `set` receives its path.
 */
export function withTempDir(prefix: string, set: (dir: string) => void, scope: 'each' | 'suite' = 'each'): void {
  let dir = '';
  const make = () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    set(dir);
  };
  const remove = () => rmSync(dir, { recursive: true, force: true });
  if (scope === 'each') {
    beforeEach(make);
    afterEach(remove);
  } else {
    before(make);
    after(remove);
  }
}
