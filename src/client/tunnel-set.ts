import type { ClientEvents, ConnectionState } from './client-events.js';
import type { ClientTransport } from './client-transport.js';
import { tunnelKey, type TunnelName } from './proxy-endpoint.js';

interface Member {
  tunnel: TunnelName;
  transport: ClientTransport;
}

/**
 * The client's tunnels, one per proxy (or per proxy address), each with its own reconnect
 * loop, heartbeats and state. Tunnels can join and leave while it runs.
 */
export class TunnelSet implements ClientTransport {
  private readonly members = new Map<string, Member>();
  private started = false;
  private stopping = false;

  constructor(private readonly events: ClientEvents) {}

  /** Every tunnel with its own state. */
  get tunnels(): Array<{ tunnel: TunnelName; state: ConnectionState }> {
    return [...this.members.values()].map(({ tunnel, transport }) => ({
      tunnel,
      state: transport.state,
    }));
  }

  /** The client's state as a whole: connected while at least one tunnel is. */
  get state(): ConnectionState {
    return combinedState(
      this.tunnels.map((t) => t.state),
      this.stopping,
    );
  }

  has(tunnel: TunnelName): boolean {
    return this.members.has(tunnelKey(tunnel));
  }

  add(tunnel: TunnelName, transport: ClientTransport): void {
    const key = tunnelKey(tunnel);
    if (this.stopping || this.members.has(key)) return;
    this.members.set(key, { tunnel, transport });
    if (this.started) transport.start();
  }

  /** Closes one tunnel for good; scrapes in flight on it get `graceMs`. */
  async remove(tunnel: TunnelName, graceMs: number): Promise<void> {
    const key = tunnelKey(tunnel);
    const member = this.members.get(key);
    if (!member) return;
    this.members.delete(key);
    await member.transport.stop(graceMs);
    this.events.emit('tunnelRemoved', tunnel);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (const { transport } of this.members.values()) transport.start();
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.members.values()].map(({ transport }) => transport.stop(graceMs)));
  }
}

/** Connected if any tunnel is (since the earliest); closed once all are; else the first one's. */
export function combinedState(states: ConnectionState[], stopping: boolean): ConnectionState {
  let connected: ConnectionState | undefined;
  for (const state of states) {
    if (state.state !== 'connected') continue;
    if (connected?.state !== 'connected' || state.since < connected.since) connected = state;
  }
  if (connected) return connected;
  const open = states.find((state) => state.state !== 'closed');
  if (open) return open;
  return states.length > 0 || stopping ? { state: 'closed' } : { state: 'connecting', attempt: 1 };
}
