import type { Server } from 'node:http';
import { describeTarget } from '../client/allowlist.js';
import { NatproxClient } from '../client/natprox-client.js';
import { loadClientSettings } from '../config/client-settings-from.js';
import { logClientEvents } from '../observability/client-logging.js';
import { logReclaimed } from '../observability/reclaim-logging.js';
import { createLogger } from '../observability/logger.js';
import { formatHostPort } from '../util/host-port.js';
import { IdleReclaim } from '../util/idle-reclaim.js';
import { redactUrl } from '../util/redact-url.js';
import { CLIENT_FLAGS } from './client-flags.js';
import { CLIENT_HELP } from './help.js';
import { logLevel } from './log-level.js';
import { parseFlags } from './parse-flags.js';
import { waitForStopSignal } from './signals.js';

export async function clientCommand(args: string[]): Promise<number> {
  const flags = parseFlags('client', args, CLIENT_FLAGS);
  if (flags.help) {
    process.stdout.write(CLIENT_HELP);
    return 0;
  }
  const level = logLevel(flags['log-level']);
  const settings = await loadClientSettings(flags);
  const log = createLogger({ level });
  const client = new NatproxClient(settings.client);
  logClientEvents(client.events, log);
  for (const warning of settings.warnings) log.warn(warning);
  let metricsServer: Server | undefined;
  if (settings.metricsListen) {
    const { host, port } = settings.metricsListen;
    try {
      // prom-client (about 10 MiB resident) only for a client that serves its metrics.
      const [{ createClientMetrics }, { boundPort, serveMetrics }] = await Promise.all([
        import('../observability/client-metrics.js'),
        import('../observability/metrics-server.js'),
      ]);
      metricsServer = await serveMetrics(
        createClientMetrics(client.events),
        settings.metricsListen,
      );
      log.info(
        { address: formatHostPort(host, boundPort(metricsServer)) },
        'client metrics listening on /metrics',
      );
    } catch (err) {
      log.fatal({ err }, `cannot serve metrics on ${formatHostPort(host, port)}`);
      log.flush();
      return 1;
    }
  }
  log.info(
    {
      proxies: client.proxies.map(({ url }) => redactUrl(url)),
      ...(settings.client.connectAllAddresses ? { connectAllAddresses: true } : {}),
      names: settings.client.names,
      allow: client.allowlist.targets.map(describeTarget),
      labels: settings.client.labels,
    },
    'natprox client starting',
  );
  // A client on a small machine idles between Prometheus's scrapes: give memory back then.
  const reclaim = new IdleReclaim({ onReclaim: (reclaimed) => logReclaimed(log, reclaimed) });
  client.events.on('scrapeServed', () => reclaim.activity());
  client.start();
  const signal = await waitForStopSignal(() => process.exit(1));
  log.info({ signal, graceMs: settings.shutdownGraceMs }, 'shutting down');
  reclaim.stop();
  await client.stop(settings.shutdownGraceMs);
  metricsServer?.close();
  metricsServer?.closeAllConnections();
  log.info('stopped');
  log.flush();
  return 0;
}
