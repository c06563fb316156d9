import type { PushedResponse } from '../../wire/pushprox/response-reader.js';

/** A scrape handed to a PushProx client and waiting for its push. */
export interface PendingScrape {
  readonly id: string;
  /** The name scraped (lower case): a push must come from a client allowed to serve it. */
  readonly name: string;
  /** Delivers the pushed answer to the waiting scraper; called at most once. */
  deliver(response: PushedResponse): void;
}

/**
 * Scrapes waiting for a push, by id. An id is here only while its scraper still waits:
 * a deadline, a cancelled scrape or a delivered push removes it, so a late or repeated push
 * finds nothing and changes nothing.
 */
export class PendingScrapes {
  private readonly byId = new Map<string, PendingScrape>();

  get size(): number {
    return this.byId.size;
  }

  add(scrape: PendingScrape): void {
    this.byId.set(scrape.id, scrape);
  }

  get(id: string): PendingScrape | undefined {
    return this.byId.get(id);
  }

  /** Removes and returns the scrape; a second call for the same id returns undefined. */
  take(id: string): PendingScrape | undefined {
    const scrape = this.byId.get(id);
    this.byId.delete(id);
    return scrape;
  }

  remove(scrape: PendingScrape): void {
    if (this.byId.get(scrape.id) === scrape) this.byId.delete(scrape.id);
  }
}
