import { authMethodOf } from '../../auth/client-grants.js';
import { VERSION } from '../../version.js';
import type { SessionRegistry } from '../session-registry.js';
import type { ClientActivity, LastScrape, RecentError } from './client-activity.js';

/** GET /api/v1/clients: the status page's data, for scripts. Documented in the README. */
export interface StatusReport {
  generatedAt: string;
  proxy: { version: string; startedAt: string; clients: number };
  clients: ClientStatus[];
  recentErrors: Array<Omit<RecentError, 'at'> & { at: string }>;
}

export interface ClientStatus {
  id: string;
  names: string[];
  labels: Record<string, string>;
  transport: string;
  /** How it authenticated: token, certificate, or none (no clients: configured). */
  auth: 'token' | 'certificate' | 'none';
  remoteAddress: string;
  connectedAt: string;
  clientVersion: string;
  ports: number[];
  lastScrape: (Omit<LastScrape, 'at'> & { at: string }) | null;
  last5m: { ok: number; failed: number };
  bytesRelayed: number;
}

export function statusReport(
  registry: SessionRegistry,
  activity: ClientActivity,
  startedAt: Date,
): StatusReport {
  const clients = registry.all().map((session): ClientStatus => {
    const names = session.registration.names;
    const last = activity.last(names);
    return {
      id: session.id,
      names: session.registration.names,
      labels: session.registration.labels,
      transport: session.transport,
      auth: authMethodOf(session.grantKey),
      remoteAddress: session.remoteAddress,
      connectedAt: session.connectedAt.toISOString(),
      clientVersion: session.registration.version,
      ports: session.registration.ports,
      lastScrape: last ? { ...last, at: last.at.toISOString() } : null,
      last5m: activity.recent(names),
      bytesRelayed: activity.bytes(names),
    };
  });
  clients.sort((a, b) => (a.names[0] ?? '').localeCompare(b.names[0] ?? ''));
  return {
    generatedAt: new Date().toISOString(),
    proxy: { version: VERSION, startedAt: startedAt.toISOString(), clients: clients.length },
    clients,
    recentErrors: activity.recentErrors().map((e) => ({ ...e, at: e.at.toISOString() })),
  };
}
