/**
 * A listener that does nothing, for 'error' events that are handled elsewhere. Module-level
 * on purpose: an arrow function made inside a handler keeps that handler's whole scope (the
 * scrape's request, response, relay) alive for as long as the emitter holds the listener,
 * and Node holds a closed HTTP/2 stream until a full garbage collection.
 */
export function ignore(): void {}
