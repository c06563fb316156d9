/**
 * The failure table (src/wire/failures.ts) names every failure outcome of both sides, and
 * docs/design.md shows it as the code has it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FAILURES, SCRAPE_OUTCOMES, SERVE_OUTCOMES } from '../src/wire/failures.js';
import { DESIGN_DOC, failureSection, generatedFailureSection } from '../scripts/failure-table.js';

describe('the failure table', () => {
  it('every failure outcome of the proxy and of the client is some failure’s', () => {
    const rows = Object.values(FAILURES);
    const proxy = new Set<string>(rows.map((row) => row.proxy));
    const client = new Set<string>(rows.map((row) => row.client).filter((o) => o !== undefined));
    const proxyOwn = SCRAPE_OUTCOMES.filter((o) => o !== 'ok' && o !== 'cancelled');
    const clientOwn = SERVE_OUTCOMES.filter(
      (o) => o !== 'ok' && o !== 'cancelled' && o !== 'push_failed',
    );
    assert.deepEqual(
      proxyOwn.filter((o) => !proxy.has(o)),
      [],
      'proxy outcomes with no failure',
    );
    assert.deepEqual(
      clientOwn.filter((o) => !client.has(o)),
      [],
      'client outcomes with no failure',
    );
  });

  it('docs/design.md shows the table the code has', () => {
    const shown = failureSection(readFileSync(DESIGN_DOC, 'utf8'));
    assert.equal(
      shown,
      generatedFailureSection(),
      "docs/design.md's failure table differs from src/wire/failures.ts: run `node --import tsx scripts/failure-table.ts`",
    );
  });
});
