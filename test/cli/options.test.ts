import { expect } from 'chai';
import { UsageError } from '../../src/cli/errors.js';
import { integerAtLeast, optionalPositiveInt, parseBackend, parseEndpointList, positiveInt, positiveNumber } from '../../src/cli/options.js';
import { normalizeEndpoint } from '../../src/labels/client.js';
import { BACKEND_NAMES } from '../../src/backend/backend-names.js';

describe('cli/options', () => {
  it('--endpoint lists are read by the labels client parser: same URLs the client will use', () => {
    const given = ' http://a:8000/v1/ ,https://b.example/v1,, http://c:1 ';
    const urls = parseEndpointList(given);
    expect(urls).to.have.length(3);
    expect(urls).to.deep.equal(urls.map(normalizeEndpoint));
    expect(urls[0]).to.not.match(/\/v1$|\/$/);
    expect(() => parseEndpointList('http://a, ftp://b')).to.throw(UsageError, /^--endpoint: .*"ftp:\/\/b" is not an http\(s\) URL/);
    expect(() => parseEndpointList(' , ')).to.throw(UsageError, /^--endpoint: no endpoint given/);
  });

  it('--backend accepts exactly the backend names and says which exist', () => {
    for (const name of BACKEND_NAMES) expect(parseBackend(name)).to.equal(name);
    expect(() => parseBackend('tpu')).to.throw(UsageError, new RegExp(`^--backend must be one of ${BACKEND_NAMES.join('\\|')}, got "tpu"$`));
  });

  it('number checks name the flag, the bound and the value', () => {
    expect(positiveInt(3, '--n')).to.equal(3);
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => positiveInt(bad, '--n')).to.throw(UsageError, new RegExp(`^--n must be a positive integer, got ${bad}$`));
    expect(integerAtLeast(0, '--port', 0)).to.equal(0);
    expect(() => integerAtLeast(0, '--max-queue', 1)).to.throw(UsageError, /^--max-queue must be an integer >= 1, got 0$/);
    expect(optionalPositiveInt(undefined, '--batch-tokens')).to.equal(undefined);
    expect(() => optionalPositiveInt(0, '--batch-tokens')).to.throw(/--batch-tokens must be a positive integer/);
    expect(positiveNumber(0.5, '--timeout')).to.equal(0.5);
    expect(() => positiveNumber(Number.POSITIVE_INFINITY, '--timeout')).to.throw(UsageError, /--timeout must be a positive number/);
  });
});
