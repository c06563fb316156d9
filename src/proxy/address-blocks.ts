/**
 * Addresses whose connections the proxy refuses for a while, because it closed one of their
 * connections for flooding. Closing a flooding connection is not enough on its own: a peer
 * that reopens it at once makes the proxy read one more buffer of pipelined requests (or
 * one more tenth of a second of frames) per reopening, hundreds of times a second. Refused
 * at accept, before anything is read, a reopening costs next to nothing. Legitimate peers
 * never get cut off; one behind the same NAT as a flooder waits out the block with it.
 */
export class AddressBlocks {
  /** Address → when its block ends (ms since epoch); oldest first (Map insertion order). */
  private readonly until = new Map<string, number>();

  constructor(
    private readonly maxAddresses = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  block(address: string | undefined, forMs: number): void {
    if (!address || forMs <= 0) return;
    this.until.delete(address);
    this.until.set(address, this.now() + forMs);
    if (this.until.size > this.maxAddresses) {
      const oldest = this.until.keys().next().value;
      if (oldest !== undefined) this.until.delete(oldest);
    }
  }

  blocked(address: string | undefined): boolean {
    if (!address || this.until.size === 0) return false;
    const until = this.until.get(address);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.until.delete(address);
    return false;
  }
}
