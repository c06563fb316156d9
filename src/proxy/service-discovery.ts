import type { ClientSession } from './client-session.js';
import {
  DEFAULT_DEPARTED_RETENTION,
  DepartedNames,
  type DepartedRetention,
} from './departed-names.js';
import type { ProxyEvents } from './proxy-events.js';
import type { SessionRegistry } from './session-registry.js';

/** One Prometheus http_sd_configs target group. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/**
 * The /clients document: one target group per served name, with NAME:PORT for each port
 * the client allows, the client's labels, and __meta_natprox_* labels for relabelling;
 * then the names whose client left within the retention (`__meta_natprox_connected` "false").
 */
export function targetGroups(
  registry: SessionRegistry,
  disconnected?: DisconnectedTargets,
): TargetGroup[] {
  const live = registry.servedNames().map(({ name, session }) => groupOf(name, session, true));
  return disconnected ? [...live, ...disconnected.groups()] : live;
}

function groupOf(name: string, session: ClientSession, connected: boolean): TargetGroup {
  return {
    // A PushProx client does not say which ports it serves: its bare name, as PushProx lists it.
    targets:
      session.registration.ports.length > 0
        ? session.registration.ports.map((port) => `${name}:${port}`)
        : [name],
    labels: {
      ...session.registration.labels,
      __meta_natprox_name: name,
      __meta_natprox_transport: session.transport,
      __meta_natprox_remote_address: session.remoteAddress,
      __meta_natprox_connected: String(connected),
    },
  };
}

/**
 * A client must have served a name this long before /clients remembers the name when it
 * leaves: a probe, or a PushProx poll for a made-up name that lapses after seconds, would
 * otherwise fill /clients with targets that were never real.
 */
export const DEFAULT_MIN_SERVED_MS = 60_000;

/**
 * Names whose last client left, still listed in /clients for a while: Prometheus keeps
 * scraping them, gets 503 and records `up` 0, where a target that vanished from discovery
 * would simply stop being scraped and never show as down. A client that comes back within
 * the retention is listed as connected again.
 */
export class DisconnectedTargets {
  private readonly departed: DepartedNames<TargetGroup>;

  constructor(
    events: ProxyEvents,
    registry: SessionRegistry,
    retention: DepartedRetention = DEFAULT_DEPARTED_RETENTION,
    minServedMs = DEFAULT_MIN_SERVED_MS,
  ) {
    this.departed = new DepartedNames(retention);
    events.on('tunnelConnected', (session) => {
      for (const name of session.registration.names) this.departed.delete(name);
    });
    events.on('tunnelDisconnected', (session) => {
      if (retention.now() - session.connectedAt.getTime() < minServedMs) return;
      for (const name of session.registration.names) {
        if (!registry.lookup(name)) this.departed.add(name, groupOf(name, session, false));
      }
    });
  }

  groups(): TargetGroup[] {
    return this.departed.values().map(([, group]) => group);
  }
}
