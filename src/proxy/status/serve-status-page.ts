import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendText } from '../plain-response.js';
import { renderStatusFragment, renderStatusPage } from './status-page.js';
import type { StatusReport } from './status-report.js';

/**
 * GET /: the status page for browsers, its refreshing fragment (?fragment=1), and a plain
 * text summary for curl and other clients that do not ask for HTML.
 */
export function serveStatusPage(
  req: IncomingMessage,
  res: ServerResponse,
  report: StatusReport,
): void {
  const query = (req.url ?? '').split('?')[1] ?? '';
  if (new URLSearchParams(query).has('fragment')) {
    sendHtml(res, renderStatusFragment(report));
    return;
  }
  if ((req.headers.accept ?? '').includes('text/html')) {
    const nonce = randomBytes(16).toString('base64');
    sendHtml(res, renderStatusPage(report, nonce), {
      'content-security-policy': `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    });
    return;
  }
  const lines = report.clients.map(
    (c) =>
      `${c.names.join(',')}\t${c.transport}\t${c.remoteAddress}\tsince ${c.connectedAt}\tlast 5 min: ${c.last5m.ok} ok, ${c.last5m.failed} failed`,
  );
  sendText(
    res,
    200,
    `natprox proxy ${report.proxy.version}: ${report.clients.length} client${report.clients.length === 1 ? '' : 's'} connected\n\n${lines.join('\n')}`,
  );
}

function sendHtml(res: ServerResponse, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    ...headers,
  });
  res.end(html);
}
