import type { ConnectionState } from './client-events.js';

/**
 * What the client runs to reach the proxy: the native tunnel (NativeClientTransport) or PushProx
 * long-polling. Both announce their state through ClientEvents.
 */
export interface ClientTransport {
  readonly state: ConnectionState;
  start(): void;
  /** Stops taking scrapes; those in flight get `graceMs` to finish. */
  stop(graceMs: number): Promise<void>;
}
