/**
 * Bench-only fleet: many natprox clients in one process, each with its own tunnel, built
 * from the library's NatproxClient (src/index.ts). One `natprox client` process per tunnel
 * would need thousands of processes; this is the same client code, just many per process.
 *
 * IPC in:  {type:'start', proxyUrl, prefix, from, count, allowPort, connectConcurrency}
 *          {type:'status'}   {type:'stop'}
 * IPC out: {type:'ready'}  {type:'connected', connected, failed, elapsedMs, firstError}
 *          {type:'status', connected, total}
 */
import { NatproxClient } from '../src/index.js';

interface StartMessage {
  type: 'start';
  proxyUrl: string;
  prefix: string;
  from: number;
  count: number;
  allowPort: number;
  connectConcurrency: number;
}

const clients: NatproxClient[] = [];

async function start(message: StartMessage): Promise<void> {
  const startedAt = performance.now();
  let connected = 0;
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < message.count) {
      const index = message.from + next;
      next += 1;
      const client = new NatproxClient({
        proxyUrl: new URL(message.proxyUrl),
        names: [`${message.prefix}${index}`],
        allow: [{ host: '127.0.0.1', port: message.allowPort }],
      });
      clients.push(client);
      client.start();
      try {
        await client.waitConnected(60_000);
        connected += 1;
      } catch (err) {
        failed += 1;
        firstError ??= String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: message.connectConcurrency }, () => worker()));
  process.send?.({
    type: 'connected',
    connected,
    failed,
    elapsedMs: performance.now() - startedAt,
    firstError,
  });
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'start') {
    start(message as StartMessage).catch((err: unknown) => {
      process.send?.({ type: 'connected', connected: 0, failed: -1, firstError: String(err) });
    });
  } else if (message.type === 'status') {
    const connected = clients.filter((c) => c.state.state === 'connected').length;
    process.send?.({ type: 'status', connected, total: clients.length });
  } else if (message.type === 'stop') {
    Promise.all(clients.map((client) => client.stop(0))).finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
