import { expect } from 'chai';
import { splitSteps, unescapeSeparator } from '../../src/data/split.js';

describe('data/split', () => {
  it('splits on a blank line by default, trimming and dropping empty segments', () => {
    expect(splitSteps('  Step one.\n\nStep two.\n\n\n\n  Step three.  \n\n')).to.deep.equal(['Step one.', 'Step two.', 'Step three.']);
  });

  it('takes a custom separator and normalises CRLF', () => {
    expect(splitSteps('a\r\nb\r\n\r\nc', '\n')).to.deep.equal(['a', 'b', 'c']);
    expect(splitSteps('x ки y ки', 'ки')).to.deep.equal(['x', 'y']);
  });

  it('returns no steps for blank text and rejects an empty separator', () => {
    expect(splitSteps(' \n\n \n')).to.deep.equal([]);
    expect(() => splitSteps('a', '')).to.throw(/must not be empty/);
  });

  it('reads command-line escapes', () => {
    expect(unescapeSeparator('\\n\\n')).to.equal('\n\n');
    expect(unescapeSeparator('\\t|\\\\')).to.equal('\t|\\');
  });
});
