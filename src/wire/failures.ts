import type { NatproxErrorCode } from '../errors.js';

/**
 * How a scrape through the proxy ended: the `outcome` label of natprox_scrapes_total, on the
 * status page and in the logs. `ok` and `cancelled` (the scraper went away) are no failure;
 * every other one is the proxy outcome of a row of FAILURES.
 */
export const SCRAPE_OUTCOMES = [
  'ok',
  'no_client',
  'unauthorized',
  'bad_request',
  'busy',
  'too_large',
  'forbidden',
  'target_error',
  'timeout',
  'client_lost',
  'cancelled',
] as const;

export type ScrapeOutcome = (typeof SCRAPE_OUTCOMES)[number];

/**
 * How a scrape the client served ended: the `outcome` label of natprox_client_scrapes_total.
 * `ok`, `cancelled` and `push_failed` (PushProx: the answer could not be pushed to the proxy)
 * are no refusal; every other one is the client outcome of a row of FAILURES.
 */
export const SERVE_OUTCOMES = [
  'ok',
  'bad_request',
  'misdirected',
  'forbidden',
  'target_error',
  'timeout',
  'cancelled',
  'push_failed',
] as const;

export type ServeOutcome = (typeof SERVE_OUTCOMES)[number];

/** One way a scrape fails: the answer the scraper gets and how each side counts it. */
export interface Failure {
  /** The HTTP status natprox answers with, whichever side answers. */
  readonly status: number;
  /** How the proxy counts it. */
  readonly proxy: ScrapeOutcome;
  /** How the client counts it; undefined for a refusal only the proxy makes. */
  readonly client: ServeOutcome | undefined;
  /** One line for the docs: when this is the answer. */
  readonly meaning: string;
}

/**
 * Every way a scrape (or a CONNECT) fails, by the error code natprox answers it with in
 * `x-natprox-error`. Both sides answer every refusal through this table, so the status the
 * scraper sees and the outcomes the proxy and the client count always agree. In the order
 * of docs/design.md's table (`npm run docs:failures` writes it from here).
 */
export const FAILURES = {
  NATPROX_BAD_REQUEST: {
    status: 400,
    proxy: 'bad_request',
    client: 'bad_request',
    meaning:
      'the request cannot be served as sent: not an http:// target, a CONNECT without NAME:PORT, a body on a GET or HEAD, a bad `_scheme`',
  },
  NATPROX_TARGET_FORBIDDEN: {
    status: 403,
    proxy: 'forbidden',
    client: 'forbidden',
    meaning:
      "the client's allowlist does not grant the port or the path (or a CONNECT stream did not start with TLS)",
  },
  NATPROX_METHOD_NOT_ALLOWED: {
    status: 405,
    proxy: 'forbidden',
    client: 'forbidden',
    meaning:
      "the client's allowlist grants the path but not the method; `Allow` lists the methods it grants",
  },
  NATPROX_UNAUTHORIZED: {
    status: 407,
    proxy: 'unauthorized',
    client: undefined,
    meaning: 'the scraper sent no or wrong credentials (`Proxy-Authorization`)',
  },
  NATPROX_REQUEST_TOO_LARGE: {
    status: 413,
    proxy: 'too_large',
    client: undefined,
    meaning: 'the request body is over `max_request_bytes`; the connection closes',
  },
  NATPROX_RESPONSE_TOO_LARGE: {
    status: 413,
    proxy: 'too_large',
    client: undefined,
    meaning:
      'the response declares more than `max_response_bytes` (one that passes it unannounced is cut off)',
  },
  NATPROX_MISDIRECTED: {
    status: 421,
    proxy: 'bad_request',
    client: 'misdirected',
    meaning: 'the client the proxy routed the scrape to does not serve that name',
  },
  NATPROX_CLIENT_BUSY: {
    status: 429,
    proxy: 'busy',
    client: undefined,
    meaning:
      'the client, or the scraper, has as many scrapes in flight as the proxy allows; `Retry-After: 1`',
  },
  NATPROX_TARGET_FAILED: {
    status: 502,
    proxy: 'target_error',
    client: 'target_error',
    meaning: 'the client could not fetch the target (refused, reset, TLS failed)',
  },
  NATPROX_CLIENT_LOST: {
    status: 502,
    proxy: 'client_lost',
    client: undefined,
    meaning: "the client's tunnel or stream was lost before the answer",
  },
  NATPROX_NO_CLIENT: {
    status: 503,
    proxy: 'no_client',
    client: undefined,
    meaning:
      'no client is connected for the name (or a PushProx client stopped polling, or cannot carry CONNECT)',
  },
  NATPROX_SCRAPE_TIMEOUT: {
    status: 504,
    proxy: 'timeout',
    client: 'timeout',
    meaning: 'the scrape did not finish within its deadline (the scrape timeout, capped)',
  },
} as const satisfies Partial<Record<NatproxErrorCode, Failure>>;

/** An error code a scrape can fail with: a row of FAILURES. */
export type ScrapeFailureCode = keyof typeof FAILURES;

export function failureFor(code: ScrapeFailureCode): Failure {
  return FAILURES[code];
}

export function statusOf(code: ScrapeFailureCode): number {
  return FAILURES[code].status;
}

export function isScrapeFailureCode(code: unknown): code is ScrapeFailureCode {
  return typeof code === 'string' && Object.hasOwn(FAILURES, code);
}

/**
 * How the proxy counts an answer the client made itself (it carries `x-natprox-error`);
 * undefined for a code this proxy does not know (a newer client's).
 */
export function proxyOutcomeOfCode(code: unknown): ScrapeOutcome | undefined {
  return isScrapeFailureCode(code) ? FAILURES[code].proxy : undefined;
}

/** A refusal the client makes: a row of FAILURES with a client outcome. */
export type ClientRefusalCode = {
  [C in ScrapeFailureCode]: (typeof FAILURES)[C]['client'] extends undefined ? never : C;
}[ScrapeFailureCode];

/**
 * The failure table as Markdown, for docs/design.md: its columns padded as prettier pads
 * them, so that formatting the docs leaves it as generated.
 */
export function failureTableMarkdown(): string {
  const code = (text: string): string => `\`${text}\``;
  const rows = [
    ['Code (`x-natprox-error`)', 'Status', 'Proxy outcome', 'Client outcome', 'Meaning'],
    ...Object.entries(FAILURES).map(([name, failure]: [string, Failure]) => [
      code(name),
      String(failure.status),
      code(failure.proxy),
      failure.client === undefined ? '—' : code(failure.client),
      failure.meaning,
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  const [head, ...body] = rows;
  return [line(head!), line(widths.map((width) => '-'.repeat(width))), ...body.map(line)].join(
    '\n',
  );
}
