import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { statusOf, type ClientRefusalCode } from '../../wire/failures.js';
import { readLimited } from '../../util/read-limited.js';
import { ERROR_CODE_HEADER } from '../../wire/protocol.js';
import type { PushedResponse } from '../../wire/pushprox/response-reader.js';

/** The Go client's error text is one line; keep this much of it. */
const MAX_ERROR_TEXT_BYTES = 4096;

/** A pushed answer in the form the scrape handler relays. */
export interface TranslatedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
}

/**
 * True for the answers PushProx's Go client makes itself when a scrape fails on its side:
 * a 500 that it builds without a protocol version, so the status line reads "HTTP/0.0".
 * A target's own 500 always carries a real HTTP version and passes through untouched.
 */
export function isClientMadeError(response: PushedResponse): boolean {
  return response.protocol === 'HTTP/0.0';
}

/**
 * Turns the Go client's "500 + error text" into natprox's own answer, as a native client
 * would have sent it: 504 when its local fetch timed out, 421 for a name it does not serve,
 * 502 otherwise; the client's text is kept as the cause.
 */
export async function translateClientError(response: PushedResponse): Promise<TranslatedResponse> {
  // Drained to its end: the push it arrived with is answered only then.
  const text = (
    await readLimited(response.body, MAX_ERROR_TEXT_BYTES, { onOver: 'truncate', rest: 'drain' })
  )
    .toString('utf8')
    .trim();
  const code = classify(text);
  const body = Buffer.from(
    `natprox: the PushProx client reported: ${text || 'an error without text'}\n`,
  );
  return {
    status: statusOf(code),
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(body.length),
      [ERROR_CODE_HEADER]: code,
    },
    body: Readable.from([body]),
  };
}

/** The code of the Go client's error text; its status is the failure table's. */
function classify(text: string): ClientRefusalCode {
  if (/context deadline exceeded|Client\.Timeout|timeout/i.test(text))
    return 'NATPROX_SCRAPE_TIMEOUT';
  if (/doesn't match client fqdn/i.test(text)) return 'NATPROX_MISDIRECTED';
  return 'NATPROX_TARGET_FAILED';
}
