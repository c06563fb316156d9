/** The floor's bare two-hop relay (bench/floor/): a bare proxy and bare client processes. */
import { forkHelper, nextMessage, type Spawned } from './children.js';

export interface BareRelay {
  /** The bare proxy's port: address it as natprox is addressed (absolute-form requests). */
  port: number;
  proxy: Spawned;
  clients: Spawned[];
  stop(): Promise<void>;
}

const listening = (m: unknown): m is { type: 'listening'; port: number } =>
  (m as { type?: string }).type === 'listening';

/** Starts the bare proxy and one bare client process per entry of `namesPerClient`. */
export async function startBareRelay(
  targetPort: number,
  namesPerClient: readonly (readonly string[])[],
): Promise<BareRelay> {
  const proxy = forkHelper('floor/bare-proxy.ts');
  const clients: Spawned[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all([...clients.map((c) => c.stop()), proxy.stop()]);
  };
  try {
    const { port } = await nextMessage(proxy, listening, 20_000, 'bare proxy start');
    for (const names of namesPerClient)
      clients.push(
        forkHelper('floor/bare-client.ts', [String(port), String(targetPort), names.join(',')]),
      );
    await Promise.all(
      clients.map((client) =>
        nextMessage(
          client,
          (m): m is { type: 'connected' } => (m as { type?: string }).type === 'connected',
          20_000,
          'bare client tunnel',
        ),
      ),
    );
    return { port, proxy, clients, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
