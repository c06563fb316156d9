import type { ServerResponse } from 'node:http';
import { statusOf, type ScrapeFailureCode } from '../wire/failures.js';
import { ERROR_CODE_HEADER } from '../wire/protocol.js';

/** Ends a response with a short text body; `code` marks it as natprox's own answer. */
export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  options: { code?: string; headers?: Record<string, string> } = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = text.endsWith('\n') ? text : `${text}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...(options.code ? { [ERROR_CODE_HEADER]: options.code } : {}),
    ...options.headers,
  });
  res.end(body);
}

/**
 * Refuses a scrape: "natprox: " and `reason`, with the status the failure table gives `code`
 * and the code in x-natprox-error.
 */
export function sendFailure(
  res: ServerResponse,
  code: ScrapeFailureCode,
  reason: string,
  headers?: Record<string, string>,
): void {
  sendText(res, statusOf(code), `natprox: ${reason}`, headers ? { code, headers } : { code });
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = `${JSON.stringify(value)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
