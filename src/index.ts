export { NatproxProxy, DEFAULT_PROXY_LIMITS } from './proxy/proxy-server.js';
export type { ProxyOptions, ProxyLimits } from './proxy/proxy-server.js';
export type { ScrapeFinished, ScrapeOutcome } from './proxy/proxy-events.js';
export type { ClientSession, Transport } from './proxy/client-session.js';
export { NatproxClient } from './client/natprox-client.js';
export type { ClientOptions } from './client/natprox-client.js';
export type { AllowedTarget } from './client/allowlist.js';
export type { ConnectionState, ScrapeServed } from './client/client-events.js';
export { NatproxError, ConfigError } from './errors.js';
export type { NatproxErrorCode } from './errors.js';
export { VERSION } from './version.js';
// Programs that run NatproxProxy themselves call this once at startup, as the CLI does.
export { installLeanAsyncResourceBind } from './util/lean-async-bind.js';
