import { isLoopbackHost, loadProxySettings } from '../config/proxy-settings-from.js';
import { errorMessage } from '../errors.js';
import { createLogger } from '../observability/logger.js';
import { logProxyEvents } from '../observability/proxy-logging.js';
import { logReclaimed } from '../observability/reclaim-logging.js';
import { warnWhenForwarded } from '../proxy/forwarded-hint.js';
import { NatproxProxy } from '../proxy/proxy-server.js';
import { IdleReclaim } from '../util/idle-reclaim.js';
import { PROXY_HELP } from './help.js';
import { logLevel } from './log-level.js';
import { COMMON_FLAGS, parseFlags } from './parse-flags.js';
import { waitForStopSignal } from './signals.js';

export async function proxyCommand(args: string[]): Promise<number> {
  const flags = parseFlags('proxy', args, {
    ...COMMON_FLAGS,
    listen: { type: 'string' },
    config: { type: 'string' },
    'default-scrape-timeout': { type: 'string' },
    'max-scrape-timeout': { type: 'string' },
    'shutdown-grace': { type: 'string' },
    'heartbeat-interval': { type: 'string' },
    insecure: { type: 'boolean' },
  });
  if (flags.help) {
    process.stdout.write(PROXY_HELP);
    return 0;
  }
  const level = logLevel(flags['log-level']);
  const settings = await loadProxySettings(flags);
  const log = createLogger({ level });
  const proxy = new NatproxProxy(settings.proxy);
  logProxyEvents(proxy.events, log);
  if (settings.openToNetwork) {
    log.warn(
      isLoopbackHost(settings.proxy.listen.host)
        ? '--insecure: INSECURE, public through a reverse proxy (behind_reverse_proxy: true) without client tokens or scraper credentials'
        : '--insecure: INSECURE, listening on a network address without client tokens or scraper credentials',
    );
  }
  for (const warning of settings.warnings) log.warn(warning);
  const { listen, clientGrants, scrapers } = settings.proxy;
  if (isLoopbackHost(listen.host) && !settings.openToNetwork && (!clientGrants || !scrapers)) {
    warnWhenForwarded(proxy, (header) =>
      log.warn(
        { header },
        `a request arrived with ${header}: a reverse proxy seems to make this loopback listener public, and without "clients:" or "scrapers:" anyone who reaches it may connect or scrape; add them, and set behind_reverse_proxy: true in the config`,
      ),
    );
  }
  if (!settings.proxy.clientGrants) {
    log.warn('no "clients:" in the config: any client may connect and register any name');
  }
  if (!settings.proxy.scrapers) {
    log.warn('no "scrapers:" in the config: anyone who reaches the proxy may scrape through it');
  }
  const reload = async (): Promise<void> => {
    try {
      const reloaded = await loadProxySettings(flags);
      proxy.reload(reloaded.proxy);
      log.info({ config: flags.config ?? null }, 'config and certificate reloaded');
      for (const warning of reloaded.warnings) log.warn(warning);
    } catch (err) {
      log.error(
        { reason: errorMessage(err) },
        'reload rejected: the previous config stays in force',
      );
    }
  };
  process.on('SIGHUP', () => void reload());
  try {
    await proxy.listen();
  } catch (err) {
    log.fatal({ err }, 'cannot listen');
    log.flush();
    return 1;
  }
  // Between scrapes, give back what the last ones left behind (see IdleReclaim).
  const reclaim = new IdleReclaim({
    busy: () => proxy.activeScrapes > 0,
    onReclaim: (reclaimed) => logReclaimed(log, reclaimed),
  });
  proxy.events.on('scrapeFinished', () => reclaim.activity());
  const signal = await waitForStopSignal(() => process.exit(1));
  reclaim.stop();
  log.info(
    { signal, inFlight: proxy.activeScrapes, graceMs: settings.shutdownGraceMs },
    'shutting down: no new connections, finishing in-flight scrapes',
  );
  await proxy.shutdown(settings.shutdownGraceMs);
  log.info('stopped');
  log.flush();
  return 0;
}
