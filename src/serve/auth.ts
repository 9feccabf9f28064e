import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Bearer token check in constant time: both sides are hashed first, so the comparison neither
 * leaks the token's length nor exits at the first differing byte.
 */
export function bearerTokenMatches(authorization: string | undefined, token: string): boolean {
  const match = /^Bearer[ ]+(\S.*)$/i.exec(authorization ?? '');
  const given = match ? match[1].trim() : '';
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(token, 'utf8').digest();
  // Evaluate timingSafeEqual even for a missing header, so every path costs the same.
  return timingSafeEqual(a, b) && match !== null;
}
