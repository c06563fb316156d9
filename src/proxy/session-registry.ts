import type { ClientSession } from './client-session.js';

/**
 * Which live session serves each name. The newest registration of a name wins, so a
 * restarted client is served at once even while its old connection is not yet known dead;
 * when the newest goes away an older live one (if any) takes over again. A session that can
 * serve now wins over one that cannot (a PushProx client with no poll waiting).
 */
export class SessionRegistry {
  /** Per name, sessions newest last. */
  private readonly byName = new Map<string, ClientSession[]>();
  private readonly sessions = new Set<ClientSession>();
  /** Per grantKey, sessions oldest first: what one clients: entry holds. */
  private readonly byGrant = new Map<string, ClientSession[]>();
  /** The grantKey each session was added under (a PushProx session's may change later). */
  private readonly grantOf = new Map<ClientSession, string>();

  get size(): number {
    return this.sessions.size;
  }

  add(session: ClientSession): void {
    if (session.closed) return;
    this.sessions.add(session);
    if (session.grantKey !== undefined) {
      this.grantOf.set(session, session.grantKey);
      const held = this.byGrant.get(session.grantKey);
      if (held) held.push(session);
      else this.byGrant.set(session.grantKey, [session]);
    }
    for (const name of session.registration.names) {
      const list = this.byName.get(name);
      if (list) list.push(session);
      else this.byName.set(name, [session]);
    }
    session.onClose(() => this.remove(session));
  }

  /** The session that serves `name` now, or undefined when no live client does. */
  lookup(name: string): ClientSession | undefined {
    const list = this.byName.get(name);
    if (!list) return undefined;
    let fallback: ClientSession | undefined;
    for (let i = list.length - 1; i >= 0; i -= 1) {
      const session = list[i] as ClientSession;
      if (session.closed) continue;
      if (session.ready !== false) return session;
      fallback ??= session;
    }
    return fallback;
  }

  /** The live sessions of one clients: entry (by grantKey), oldest first. */
  sessionsOf(grantKey: string): ClientSession[] {
    return (this.byGrant.get(grantKey) ?? []).filter((session) => !session.closed);
  }

  /** Every live session, oldest first. */
  all(): ClientSession[] {
    return [...this.sessions].filter((session) => !session.closed);
  }

  /** Names with the session that currently serves each, sorted by name. */
  servedNames(): Array<{ name: string; session: ClientSession }> {
    const out: Array<{ name: string; session: ClientSession }> = [];
    for (const name of [...this.byName.keys()].sort()) {
      const session = this.lookup(name);
      if (session) out.push({ name, session });
    }
    return out;
  }

  private remove(session: ClientSession): void {
    this.sessions.delete(session);
    const key = this.grantOf.get(session);
    if (key !== undefined) {
      this.grantOf.delete(session);
      const held = (this.byGrant.get(key) ?? []).filter((other) => other !== session);
      if (held.length === 0) this.byGrant.delete(key);
      else this.byGrant.set(key, held);
    }
    for (const name of session.registration.names) {
      const list = this.byName.get(name);
      if (!list) continue;
      const remaining = list.filter((other) => other !== session);
      if (remaining.length === 0) this.byName.delete(name);
      else this.byName.set(name, remaining);
    }
  }
}
