import type { SessionRegistry } from './session-registry.js';

/** One Prometheus http_sd_configs target group. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/**
 * The /clients document: one target group per served name, with NAME:PORT for each port
 * the client allows, the client's labels, and __meta_natprox_* labels for relabelling.
 */
export function targetGroups(registry: SessionRegistry): TargetGroup[] {
  return registry.servedNames().map(({ name, session }) => ({
    targets: session.registration.ports.map((port) => `${name}:${port}`),
    labels: {
      ...session.registration.labels,
      __meta_natprox_name: name,
      __meta_natprox_transport: session.transport,
      __meta_natprox_remote_address: session.remoteAddress,
    },
  }));
}
