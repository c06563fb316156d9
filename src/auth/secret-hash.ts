import { createHash, timingSafeEqual } from 'node:crypto';

export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * How secrets are hashed and compared. Callers that must not reveal, by timing, which part
 * of a credential was wrong do the same digests and comparisons whatever the input; tests
 * pass a counting implementation to check that.
 */
export interface SecretHashing {
  /** The SHA-256 of the UTF-8 text (32 bytes). */
  digest(text: string): Buffer;
  /** Constant-time equality of two digests; false (at once) when the lengths differ. */
  equal(a: Buffer, b: Buffer): boolean;
}

export const sha256Hashing: SecretHashing = {
  digest: (text) => createHash('sha256').update(text, 'utf8').digest(),
  equal: (a, b) => a.length === b.length && timingSafeEqual(a, b),
};

/** Constant-time check of a presented secret against a stored lowercase hex SHA-256. */
export function matchesSha256(secret: string, expectedHex: string): boolean {
  return sha256Hashing.equal(sha256Hashing.digest(secret), Buffer.from(expectedHex, 'hex'));
}
