import type { Allowlist } from '../allowlist.js';
import { DEFAULT_BACKOFF } from '../backoff.js';
import type { ClientEvents } from '../client-events.js';
import { LocalTargets } from '../local-targets.js';
import type { ClientOptions } from '../client-options.js';
import { proxyLabel, type ProxyEndpoint } from '../proxy-endpoint.js';
import { ConfigError } from '../../errors.js';
import { ProxyHttp } from './proxy-http.js';
import { PushExecutor } from './push-executor.js';
import { PushProxClientTransport } from './pushprox-client-transport.js';

/** Wires the PushProx transport of `natprox client --transport pushprox`. */
export function pushProxTransport(
  options: ClientOptions,
  endpoint: ProxyEndpoint,
  allowlist: Allowlist,
  events: ClientEvents,
): PushProxClientTransport {
  const [name, ...others] = options.names;
  if (name === undefined || others.length > 0) {
    throw new ConfigError(
      `--transport pushprox serves exactly one name (a PushProx client polls with one FQDN), got ${options.names.length}: ${options.names.join(', ')}; run one client per name`,
    );
  }
  const proxy = new ProxyHttp(endpoint.url, name, endpoint.token, endpoint.tls);
  const targets = new LocalTargets(new Set([name]), allowlist);
  return new PushProxClientTransport({
    name,
    proxy,
    executor: new PushExecutor(targets, proxy, events),
    events,
    backoff: options.backoff ?? DEFAULT_BACKOFF,
    tunnel: { proxy: proxyLabel(endpoint.url) },
    ...(options.pollAcceptedAfterMs !== undefined
      ? { acceptedAfterMs: options.pollAcceptedAfterMs }
      : {}),
  });
}
