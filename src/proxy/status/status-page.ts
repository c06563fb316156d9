import { escapeHtml, formatAgo, formatBytes, formatDuration } from './html.js';
import type { ClientStatus, StatusReport } from './status-report.js';

/** How often the page refreshes its data (no full reload). */
export const REFRESH_MS = 5000;

/** The part of the page that refreshes: summary, one row per client, latest errors. */
export function renderStatusFragment(report: StatusReport): string {
  const now = Date.parse(report.generatedAt);
  const rows = report.clients.map((client) => clientRow(client, now)).join('');
  const errors = report.recentErrors
    .map(
      (e) => `<li><time datetime="${e.at}">${formatAgo(e.at, now)}</time>
        <b>${escapeHtml(`${e.name}:${e.port}${e.path}`)}</b>
        <span class="bad">${e.status || '—'} ${escapeHtml(e.outcome)}</span>
        <span class="reason">${escapeHtml(e.reason)}</span>${e.count > 1 ? ` <span class="count">(${e.count} times)</span>` : ''}</li>`,
    )
    .join('');
  return `<p class="summary"><b>${report.proxy.clients}</b> client${report.proxy.clients === 1 ? '' : 's'} connected
      · natprox ${escapeHtml(report.proxy.version)}
      · started <time datetime="${report.proxy.startedAt}">${formatAgo(report.proxy.startedAt, now)}</time>
      · updated <time id="updated" datetime="${report.generatedAt}">${new Date(now).toISOString().slice(11, 19)} UTC</time></p>
    <table id="clients">
      <thead><tr><th>Names</th><th>Labels</th><th>Transport</th><th>Remote address</th><th>Connected</th><th>Last scrape</th><th>Last 5 min</th><th>Relayed</th></tr></thead>
      <tbody>${rows || '<tr><td colspan="8" class="empty">No client is connected.</td></tr>'}</tbody>
    </table>
    <h2>Latest errors</h2>
    ${errors ? `<ul id="errors">${errors}</ul>` : '<p class="empty" id="errors">No failed scrapes.</p>'}`;
}

function clientRow(client: ClientStatus, now: number): string {
  const labels = Object.entries(client.labels)
    .map(([key, value]) => `<span class="label">${escapeHtml(key)}=${escapeHtml(value)}</span>`)
    .join(' ');
  const last = client.lastScrape;
  const lastCell = last
    ? `<span class="${last.outcome === 'ok' ? 'ok' : 'bad'}">${last.status || '—'} ${escapeHtml(last.outcome)}</span>
       ${formatDuration(last.durationMs)}, <time datetime="${last.at}">${formatAgo(last.at, now)}</time>`
    : '<span class="muted">none yet</span>';
  const recent = `<span class="ok">${client.last5m.ok} ok</span>${
    client.last5m.failed ? ` · <span class="bad">${client.last5m.failed} failed</span>` : ''
  }`;
  return `<tr data-client="${escapeHtml(client.id)}">
    <td data-label="Names"><b>${client.names.map(escapeHtml).join(', ')}</b><br><span class="muted">ports ${client.ports.join(', ')}</span></td>
    <td data-label="Labels">${labels || '<span class="muted">—</span>'}</td>
    <td data-label="Transport">${client.transport === 'pushprox' ? 'PushProx long-poll' : 'native'}${client.auth === 'none' ? '' : `<br><span class="muted">${client.auth}</span>`}</td>
    <td data-label="Remote address">${escapeHtml(client.remoteAddress)}</td>
    <td data-label="Connected"><time datetime="${client.connectedAt}">${formatAgo(client.connectedAt, now)}</time></td>
    <td data-label="Last scrape" class="last-scrape">${lastCell}</td>
    <td data-label="Last 5 min" class="recent">${recent}</td>
    <td data-label="Relayed">${formatBytes(client.bytesRelayed)}</td>
  </tr>`;
}

/** The whole page; `nonce` authorises its one inline style and script under the CSP. */
export function renderStatusPage(report: StatusReport, nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>natprox proxy status</title>
<style nonce="${nonce}">
  :root { color-scheme: light dark; --ok: #1a7f37; --bad: #c62828; --muted: #6b7280; --line: #d0d7de; }
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1rem; max-width: 80rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; } h2 { font-size: 1.05rem; margin-top: 1.5rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; vertical-align: top; padding: .45rem .5rem; border-bottom: 1px solid var(--line); }
  th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
  .ok { color: var(--ok); } .bad { color: var(--bad); font-weight: 600; } .muted, .empty { color: var(--muted); }
  .label { display: inline-block; font-family: ui-monospace, monospace; font-size: .85em; border: 1px solid var(--line); border-radius: .3rem; padding: 0 .3rem; margin: 0 .2rem .2rem 0; }
  #errors { padding-left: 1.1rem; } #errors li { margin-bottom: .4rem; } .reason { display: block; color: var(--muted); overflow-wrap: anywhere; }
  #stale { display: none; background: #fff3cd; color: #664d03; padding: .4rem .6rem; border-radius: .3rem; }
  #stale.shown { display: block; }
  @media (max-width: 48rem) {
    thead { display: none; } table, tbody, tr, td { display: block; width: 100%; }
    tr { border: 1px solid var(--line); border-radius: .4rem; margin-bottom: .75rem; padding: .25rem .5rem; }
    td { border: 0; padding: .2rem 0; } td[data-label]::before { content: attr(data-label); display: block; font-size: .75rem; color: var(--muted); }
  }
</style>
</head>
<body>
<h1>natprox proxy</h1>
<p id="stale" role="status">Cannot reach the proxy; showing the last data, retrying.</p>
<main id="status">${renderStatusFragment(report)}</main>
<script nonce="${nonce}">
  // Refreshes the data in place every ${REFRESH_MS / 1000} s; the browser reuses the page's credentials.
  const status = document.getElementById('status');
  const stale = document.getElementById('stale');
  async function refresh() {
    try {
      const response = await fetch('?fragment=1', { cache: 'no-store', credentials: 'same-origin' });
      if (!response.ok) throw new Error(String(response.status));
      status.innerHTML = await response.text();
      stale.classList.remove('shown');
    } catch {
      stale.classList.add('shown');
    }
  }
  setInterval(refresh, ${REFRESH_MS});
</script>
</body>
</html>
`;
}
