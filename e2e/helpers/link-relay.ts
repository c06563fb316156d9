/**
 * A slow home line, as a TCP relay (the kernel here has no netem): the client dials the
 * relay, which forwards to the proxy. Each direction is a bounded FIFO (a router's buffer)
 * drained at a fixed rate (the line's bytes/s), and each byte is delivered a fixed delay
 * after it left the queue (half the round trip). When the queue is full the relay stops
 * reading, so the sender's TCP backs off as it would behind a full router buffer.
 *
 * Run as a script: node --import tsx link-relay.ts --listen HOST:PORT --target HOST:PORT
 *   [--up-delay-ms N] [--down-delay-ms N] [--up-bytes-per-second N]
 *   [--down-bytes-per-second N] [--queue-bytes N]
 * "up" is from the dialing side (home) to the target (proxy). Prints "relay listening".
 */
import net, { type Socket } from 'node:net';
import { parseArgs } from 'node:util';

export interface DirectionOptions {
  delayMs: number;
  /** 0: no limit. */
  bytesPerSecond: number;
  queueBytes: number;
}

/** How often a direction with bytes waiting wakes up to move them. */
const TICK_MS = 4;

interface Chunk {
  data: Buffer;
  dueAt: number;
}

/** One direction of the line: source → queue → rate → delay → destination. */
export function shapeDirection(
  source: Socket,
  destination: Socket,
  options: DirectionOptions,
): void {
  const queue: Buffer[] = [];
  let queued = 0;
  const inFlight: Chunk[] = [];
  let credit = 0;
  let lastAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let sourceEnded = false;
  let blocked = false;

  const schedule = (): void => {
    if (timer === undefined && (queue.length > 0 || inFlight.length > 0)) {
      timer = setTimeout(pump, TICK_MS);
    }
  };

  const pump = (): void => {
    timer = undefined;
    const now = Date.now();
    // Serialise onto the line at the rate.
    if (options.bytesPerSecond > 0) {
      credit = Math.min(credit + ((now - lastAt) * options.bytesPerSecond) / 1000, 16 * 1024);
    } else credit = Number.POSITIVE_INFINITY;
    lastAt = now;
    while (queue.length > 0 && credit >= 1) {
      const head = queue[0] as Buffer;
      const take = Math.min(head.length, Math.floor(Math.min(credit, 1 << 30)));
      const part = take === head.length ? head : head.subarray(0, take);
      if (take === head.length) queue.shift();
      else queue[0] = head.subarray(take);
      queued -= take;
      credit -= take;
      inFlight.push({ data: part, dueAt: now + options.delayMs });
    }
    if (queued < options.queueBytes / 2 && source.isPaused() && !sourceEnded) source.resume();
    // Deliver what has crossed the line.
    while (!blocked && inFlight.length > 0 && (inFlight[0] as Chunk).dueAt <= now) {
      const chunk = inFlight.shift() as Chunk;
      if (!destination.write(chunk.data)) {
        blocked = true;
        destination.once('drain', () => {
          blocked = false;
          schedule();
        });
      }
    }
    if (sourceEnded && queue.length === 0 && inFlight.length === 0) {
      destination.end();
      return;
    }
    if (!blocked) schedule();
  };

  source.on('data', (data: Buffer) => {
    queue.push(data);
    queued += data.length;
    if (queued >= options.queueBytes) source.pause();
    schedule();
  });
  source.once('end', () => {
    sourceEnded = true;
    if (queue.length === 0 && inFlight.length === 0) destination.end();
    else schedule();
  });
}

function hostPort(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(text.slice(at + 1)) };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string' },
      target: { type: 'string' },
      'up-delay-ms': { type: 'string', default: '0' },
      'down-delay-ms': { type: 'string', default: '0' },
      'up-bytes-per-second': { type: 'string', default: '0' },
      'down-bytes-per-second': { type: 'string', default: '0' },
      'queue-bytes': { type: 'string', default: String(256 * 1024) },
    },
  });
  if (!values.listen || !values.target) throw new Error('--listen and --target are required');
  const listen = hostPort(values.listen);
  const target = hostPort(values.target);
  const queueBytes = Number(values['queue-bytes']);
  const up: DirectionOptions = {
    delayMs: Number(values['up-delay-ms']),
    bytesPerSecond: Number(values['up-bytes-per-second']),
    queueBytes,
  };
  const down: DirectionOptions = {
    delayMs: Number(values['down-delay-ms']),
    bytesPerSecond: Number(values['down-bytes-per-second']),
    queueBytes,
  };
  const server = net.createServer({ allowHalfOpen: true }, (home) => {
    const proxy = net.connect({ ...target, allowHalfOpen: true });
    home.setNoDelay(true);
    proxy.setNoDelay(true);
    const closeBoth = (): void => {
      home.destroy();
      proxy.destroy();
    };
    home.on('error', closeBoth);
    proxy.on('error', closeBoth);
    home.on('close', () => proxy.destroy());
    proxy.on('close', () => home.destroy());
    shapeDirection(home, proxy, up);
    shapeDirection(proxy, home, down);
  });
  server.listen(listen.port, listen.host, () => {
    console.log(`relay listening on ${values.listen} to ${values.target}`);
  });
  const stop = (): void => {
    server.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main();
