/** Handles on the harness's own helper processes: the target server and the fleet driver. */
import { forkHelper, nextMessage, type Spawned } from './children.js';

export interface TargetProcess extends Spawned {
  port: number;
  /** Resolves at the next /hang or /drip request the target receives. */
  nextEvent(type: 'hang' | 'drip', timeoutMs: number): Promise<void>;
}

export async function startTarget(): Promise<TargetProcess> {
  const spawned = forkHelper('target-server.ts');
  const { port } = await nextMessage(
    spawned,
    (m): m is { type: 'listening'; port: number } => (m as { type?: string }).type === 'listening',
    20_000,
    'target start',
  );
  return {
    ...spawned,
    port,
    async nextEvent(type, timeoutMs) {
      await nextMessage(
        spawned,
        (m): m is { type: string } => (m as { type?: string }).type === type,
        timeoutMs,
        `target ${type}`,
      );
    },
  };
}

export interface FleetProcess extends Spawned {
  connected: number;
  failed: number;
  connectMs: number;
  firstError: string | undefined;
  status(): Promise<{ connected: number; total: number }>;
  close(): Promise<void>;
}

export interface FleetStart {
  proxyUrl: string;
  prefix: string;
  from: number;
  count: number;
  allowPort: number;
  connectConcurrency: number;
}

/** Forks a fleet driver; call connect() on it to open its tunnels. */
export async function forkFleet(): Promise<Spawned> {
  const spawned = forkHelper('fleet-driver.ts');
  await nextMessage(
    spawned,
    (m): m is { type: 'ready' } => (m as { type?: string }).type === 'ready',
    20_000,
    'fleet driver start',
  );
  return spawned;
}

interface Connected {
  type: 'connected';
  connected: number;
  failed: number;
  elapsedMs: number;
  firstError?: string;
}

export async function connectFleet(
  spawned: Spawned,
  start: FleetStart,
  timeoutMs: number,
): Promise<FleetProcess> {
  const answer = nextMessage(
    spawned,
    (m): m is Connected => (m as { type?: string }).type === 'connected',
    timeoutMs,
    'fleet connect',
  );
  spawned.child.send({ type: 'start', ...start });
  const connected = await answer;
  return {
    ...spawned,
    connected: connected.connected,
    failed: connected.failed,
    connectMs: connected.elapsedMs,
    firstError: connected.firstError,
    async status() {
      const answerStatus = nextMessage(
        spawned,
        (m): m is { type: 'status'; connected: number; total: number } =>
          (m as { type?: string }).type === 'status',
        20_000,
        'fleet status',
      );
      spawned.child.send({ type: 'status' });
      const { connected: now, total } = await answerStatus;
      return { connected: now, total };
    },
    async close() {
      if (spawned.child.connected) spawned.child.send({ type: 'stop' });
      await spawned.stop(5000);
    },
  };
}
