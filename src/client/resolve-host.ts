import { lookup } from 'node:dns/promises';

/** Every address (A and AAAA) a host name has now; an IP literal resolves to itself. */
export type ResolveHost = (host: string) => Promise<string[]>;

/** The system resolver (what connect() would use: /etc/hosts, then DNS), all addresses. */
export const systemResolveHost: ResolveHost = async (host) => {
  const entries = await lookup(host, { all: true, verbatim: true });
  return [...new Set(entries.map((entry) => entry.address))];
};
