import { grantKey, type ClientGrant } from '../auth/client-grants.js';
import type { ClientSession } from './client-session.js';
import type { SessionRegistry } from './session-registry.js';

/** The `limits:` defaults for `clients:` entries that set no max_names or max_tunnels. */
export interface EntryLimitDefaults {
  /** Distinct names an entry with a `*` glob may hold at once. */
  maxNamesPerEntry: number;
  /** Tunnels an entry may hold per name it may hold (HA addresses, a restart overlapping). */
  maxTunnelsPerName: number;
}

/**
 * What one `clients:` entry may hold at once, so that one credential cannot take every
 * slot of max_clients or grow /clients without bound. An entry of exact names can hold
 * those; one with a glob (a fleet, "home-*") max_names_per_entry. Tunnels: that many names
 * times max_tunnels_per_name. The entry's own max_names and max_tunnels win.
 */
export function entryLimits(
  grant: ClientGrant,
  defaults: EntryLimitDefaults,
): { maxNames: number; maxTunnels: number } {
  const exact = grant.names.every((pattern) => !pattern.includes('*'));
  const maxNames = grant.maxNames ?? (exact ? grant.names.length : defaults.maxNamesPerEntry);
  return { maxNames, maxTunnels: grant.maxTunnels ?? maxNames * defaults.maxTunnelsPerName };
}

/** `replaces`: an older tunnel of the same entry to close first (the entry is at its limit). */
export type EntryAdmission = { ok: true; replaces?: ClientSession } | { ok: false; reason: string };

/**
 * Whether a new registration of `names` fits its entry's limits. At the tunnel limit, a
 * registration whose names the entry already holds is a client reconnecting (restarted, or
 * its old connection not yet known dead): it replaces the entry's oldest tunnel that serves
 * one of those names instead of being locked out by it.
 */
export function admitToEntry(
  registry: SessionRegistry,
  grant: ClientGrant,
  defaults: EntryLimitDefaults,
  names: readonly string[],
): EntryAdmission {
  const { maxNames, maxTunnels } = entryLimits(grant, defaults);
  const held = registry.sessionsOf(grantKey(grant));
  const heldNames = new Set(held.flatMap((session) => session.registration.names));
  const entry = `the clients: entry for ${grant.names.join(', ')}`;
  const newNames = names.filter((name) => !heldNames.has(name));
  if (heldNames.size + newNames.length > maxNames) {
    return {
      ok: false,
      reason: `natprox: ${entry} already holds ${heldNames.size} names and may hold at most ${maxNames}; ${newNames.map((n) => `"${n}"`).join(', ')} would be more (raise max_names in that entry, or limits: max_names_per_entry on the proxy)`,
    };
  }
  if (held.length < maxTunnels) return { ok: true };
  const replaces =
    newNames.length === 0
      ? held.find((session) => session.registration.names.some((name) => names.includes(name)))
      : undefined;
  if (replaces) return { ok: true, replaces };
  return {
    ok: false,
    reason: `natprox: ${entry} already holds ${held.length} tunnels, its limit (raise max_tunnels in that entry, or limits: max_tunnels_per_name on the proxy)`,
  };
}
