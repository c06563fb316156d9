import { createHash } from 'node:crypto';

/** SHA-256 of a secret as lowercase hex: what clients:, scrapers: and operators: store. */
export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** "AA:BB:…" (Node's fingerprint256) → "aabb…", the form a pinned fingerprint takes. */
export function pinOf(fingerprint256: string): string {
  return fingerprint256.replace(/:/g, '').toLowerCase();
}
