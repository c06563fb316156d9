/**
 * Every document the repository mentions is in the repository: a file name ending in .md,
 * anywhere in a tracked text file, resolves to a tracked file (relative to the file that
 * names it, or to the repository root). A reader must never be sent to a document that only
 * its authors had.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TEXT = /\.(md|ts|mts|js|mjs|cjs|json|yml|yaml|sh|service|txt)$|^\.ci\//;
/** A name ending in .md, not part of a URL (those are outside by nature). */
const DOCUMENT = /(?<![\w/.:-])((?:\.{1,2}\/)?[\w./-]*[\w-]\.md)\b/g;

test('every .md file a tracked file names exists in the repository', () => {
  const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  const files = new Set(tracked);
  const missing: string[] = [];
  for (const file of tracked) {
    if (!TEXT.test(file) || file === 'package-lock.json') continue;
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const match of text.matchAll(DOCUMENT)) {
      const name = match[1] as string;
      const candidates = [normalize(join(dirname(file), name)), normalize(name)];
      if (!candidates.some((candidate) => files.has(candidate))) {
        const line = text.slice(0, match.index).split('\n').length;
        missing.push(`${file}:${line} names ${name}`);
      }
    }
  }
  assert.deepEqual(missing, [], 'documents named but not in the repository');
});
