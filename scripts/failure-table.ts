/**
 * Writes the failure table (src/wire/failures.ts) into docs/design.md, between
 * `<!-- failure-table:start -->` and `<!-- failure-table:end -->`; nothing else in the file
 * changes. `npm run docs:failures`; test/failure-table.test.ts fails when the two differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { failureTableMarkdown } from '../src/wire/failures.js';

export const DESIGN_DOC = fileURLToPath(new URL('../docs/design.md', import.meta.url));
const START = '<!-- failure-table:start -->';
const END = '<!-- failure-table:end -->';

/** What stands between the markers in `doc`; throws when they are missing. */
export function failureSection(doc: string): string {
  const start = doc.indexOf(START);
  const end = doc.indexOf(END, start);
  if (start < 0 || end < 0) {
    throw new Error(`docs/design.md must contain ${START} followed by ${END}`);
  }
  return doc.slice(start + START.length, end);
}

/** The section as it is generated from the code. */
export function generatedFailureSection(): string {
  return `\n\n${NOTE}\n\n${failureTableMarkdown()}\n\n`;
}

const NOTE = `Every way a scrape (or a CONNECT) fails, from \`src/wire/failures.ts\`: both sides answer
each refusal with the status of its code and count it with the outcomes shown. The outcomes
that are no failure are \`ok\` and \`cancelled\` (the scraper went away; status 0), and on
the client \`push_failed\` (PushProx: the answer could not be pushed). Refusals of tunnels,
polls and operator requests are not scrapes and are not in this table.`;

/** `doc` with the generated table between the markers. */
export function withFailureTable(doc: string): string {
  const start = doc.indexOf(START) + START.length;
  const end = start + failureSection(doc).length;
  return `${doc.slice(0, start)}${generatedFailureSection()}${doc.slice(end)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const doc = readFileSync(DESIGN_DOC, 'utf8');
  const updated = withFailureTable(doc);
  if (updated === doc) {
    process.stdout.write('docs/design.md: the failure table is up to date\n');
  } else {
    writeFileSync(DESIGN_DOC, updated);
    process.stdout.write('docs/design.md: failure table rewritten\n');
  }
}
