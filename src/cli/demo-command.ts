import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { NatproxClient } from '../client/natprox-client.js';
import { flagHostPort, isLoopbackHost } from '../config/proxy-settings-from.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../observability/logger.js';
import { logClientEvents } from '../observability/client-logging.js';
import {
  NatproxProxy,
  DEFAULT_SCRAPE_TIMEOUT_MS,
  MAX_SCRAPE_TIMEOUT_MS,
} from '../proxy/proxy-server.js';
import { formatHostPort, type HostPort } from '../util/host-port.js';
import { DEMO_HELP } from './help.js';
import { logLevel } from './log-level.js';
import { COMMON_FLAGS, parseFlags } from './parse-flags.js';
import { createSampleTarget } from './sample-target.js';
import { waitForStopSignal } from './signals.js';

async function listenWithFallback(
  listen: (port: number) => Promise<unknown>,
  preferredPort: number,
): Promise<void> {
  try {
    await listen(preferredPort);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    await listen(0);
  }
}

function listenServer(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** `npm start`: the whole job on loopback with no set-up. */
export async function demoCommand(args: string[]): Promise<number> {
  const flags = parseFlags('demo', args, { ...COMMON_FLAGS, listen: { type: 'string' } });
  if (flags.help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  const log = createLogger({ level: logLevel(flags['log-level']) });
  const wanted: HostPort = flagHostPort('listen', flags.listen ?? '127.0.0.1:8080');
  if (!isLoopbackHost(wanted.host)) {
    throw new ConfigError(
      `--listen: the demo runs without tokens or credentials, so it listens only on loopback (127.0.0.1 or ::1), not ${wanted.host}; run natprox proxy with a config for anything else`,
    );
  }

  const target = createSampleTarget();
  await listenWithFallback((port) => listenServer(target, '127.0.0.1', port), 9109);
  const targetPort = (target.address() as AddressInfo).port;

  let proxy: NatproxProxy | undefined;
  await listenWithFallback(async (port) => {
    proxy = new NatproxProxy({
      listen: { host: wanted.host, port },
      defaultScrapeTimeoutMs: DEFAULT_SCRAPE_TIMEOUT_MS,
      maxScrapeTimeoutMs: MAX_SCRAPE_TIMEOUT_MS,
    });
    await proxy.listen();
  }, wanted.port);
  const running = proxy as NatproxProxy;
  const proxyAddress = formatHostPort(wanted.host, running.address().port);
  running.events.on('scrapeFinished', (info) =>
    log.info(
      {
        target: `${info.name}:${info.port}${info.path}`,
        outcome: info.outcome,
        status: info.status,
        durationMs: Math.round(info.durationMs * 10) / 10,
        bytes: info.bytes,
        ...(info.reason ? { reason: info.reason } : {}),
      },
      'scrape through the proxy',
    ),
  );

  const client = new NatproxClient({
    proxyUrl: new URL(`http://${proxyAddress}`),
    names: ['demo'],
    allow: [{ host: '127.0.0.1', port: targetPort }],
    labels: { location: 'demo' },
  });
  logClientEvents(client.events, log);
  client.start();
  await client.waitConnected();

  process.stdout.write(`
natprox demo is running on loopback: a proxy, a client named "demo", and a sample target.

  proxy    http://${proxyAddress}   (operator pages: /clients  /metrics  /-/healthy)
  target   http://127.0.0.1:${targetPort}/metrics, reachable only through client "demo"

Scrape "demo" through the proxy:

  curl -x http://${proxyAddress} http://demo:${targetPort}/metrics

See what the proxy offers for service discovery:

  curl http://${proxyAddress}/clients

prometheus.yml:

  scrape_configs:
    - job_name: demo
      proxy_url: http://${proxyAddress}
      static_configs:
        - targets: ['demo:${targetPort}']
    # or let Prometheus discover every connected client from the proxy:
    - job_name: natprox-clients
      proxy_url: http://${proxyAddress}
      http_sd_configs:
        - url: http://${proxyAddress}/clients

Each scrape is logged below. Ctrl-C stops everything.

`);
  const signal = await waitForStopSignal(() => process.exit(1));
  log.info({ signal }, 'demo stopping');
  await client.stop(2000);
  await running.shutdown(2000);
  target.close();
  target.closeAllConnections();
  log.info('demo stopped');
  log.flush();
  return 0;
}
