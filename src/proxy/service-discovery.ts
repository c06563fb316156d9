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
    },
  }));
}
