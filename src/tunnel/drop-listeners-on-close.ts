import type { Http2Stream } from 'node:http2';

/**
 * Removes every listener of an HTTP/2 stream once it has closed. Node keeps a closed stream
 * reachable from its native handle until a full garbage collection, and with it everything
 * its listeners hold (a scrape's request, response and relay): with thousands of tunnels
 * that was most of what a process promoted to old space (the proxy in the fleet bench: 2.4
 * -> 0.8 MB per scavenge, scavenges 8 -> 4-5 ms). The stream's other 'close' listeners still
 * run: an emit works on a copy of the list.
 */
export function dropListenersOnClose(stream: Http2Stream): void {
  // One shared function, no closure: every scrape's stream gets it.
  stream.on('close', dropListeners);
}

function dropListeners(this: Http2Stream): void {
  this.removeAllListeners();
}
