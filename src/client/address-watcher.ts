import { errorMessage } from '../errors.js';
import type { ResolveHost } from './resolve-host.js';

export interface AddressWatcherOptions {
  host: string;
  resolveHost: ResolveHost;
  /** How often to resolve again once it worked. */
  intervalMs: number;
  /** How soon to try again after resolving failed (or found nothing). */
  retryMs: number;
  onAddresses: (addresses: string[]) => void;
  onFailure: (reason: string) => void;
}

/**
 * Resolves a proxy's host now and then periodically, and reports every answer, so that the
 * client follows replicas as they join and leave DNS. A failed or empty answer is reported
 * as a failure and changes nothing: a DNS hiccup must not close tunnels that work.
 */
export class AddressWatcher {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: AddressWatcherOptions) {}

  start(): void {
    if (this.stopped || this.timer) return;
    void this.resolve();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async resolve(): Promise<void> {
    const { host, resolveHost } = this.options;
    let addresses: string[] | undefined;
    let failure: string | undefined;
    try {
      addresses = [...new Set(await resolveHost(host))].sort();
      if (addresses.length === 0) failure = `${host} has no A or AAAA address`;
    } catch (err) {
      failure = `cannot resolve ${host}: ${errorMessage(err)}`;
    }
    if (this.stopped) return;
    if (failure !== undefined) this.options.onFailure(failure);
    else if (addresses) this.options.onAddresses(addresses);
    // Not unref'd: while no address is known this timer is all that keeps the client going.
    this.timer = setTimeout(
      () => void this.resolve(),
      failure === undefined ? this.options.intervalMs : this.options.retryMs,
    );
  }
}
