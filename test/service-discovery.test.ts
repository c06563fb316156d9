import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ClientSession, Transport } from '../src/proxy/client-session.js';
import { ProxyEvents } from '../src/proxy/proxy-events.js';
import {
  DisconnectedTargets,
  targetGroups,
  type TargetGroup,
} from '../src/proxy/service-discovery.js';
import { SessionRegistry } from '../src/proxy/session-registry.js';
import {
  eventually,
  getOrigin,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
} from './helpers/loopback.js';

/** The smallest ClientSession: plain data plus close/onClose; it cannot scrape. */
class FakeSession implements ClientSession {
  closed = false;
  readonly connectedAt = new Date(0);
  readonly grantKey = undefined;
  private readonly listeners: Array<(reason: string) => void> = [];

  constructor(
    readonly id: string,
    readonly registration: ClientSession['registration'],
    readonly transport: Transport = 'native',
    readonly remoteAddress = '203.0.113.7',
  ) {}

  scrape(): never {
    throw new Error('not used');
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const listener of this.listeners) listener(reason);
  }

  onClose(listener: (reason: string) => void): void {
    this.listeners.push(listener);
  }
}

function session(
  id: string,
  names: string[],
  ports: number[] = [9100],
  labels: Record<string, string> = {},
  transport: Transport = 'native',
  remoteAddress = '203.0.113.7',
): FakeSession {
  return new FakeSession(id, { names, labels, ports, version: '0.1.0' }, transport, remoteAddress);
}

/** name -> id of the session serving it, as /clients routing sees it. */
function served(registry: SessionRegistry): Record<string, string> {
  return Object.fromEntries(registry.servedNames().map(({ name, session: s }) => [name, s.id]));
}

describe('targetGroups', () => {
  it('is empty with no sessions', () => {
    assert.deepEqual(targetGroups(new SessionRegistry()), []);
  });

  it('one group per name, NAME:PORT per port, client labels plus __meta_natprox_* labels', () => {
    const registry = new SessionRegistry();
    registry.add(
      session(
        's1',
        ['raspberrypi', 'home-1'],
        [9090, 9100],
        { location: 'home' },
        'native',
        '198.51.100.1',
      ),
    );
    registry.add(session('s2', ['office'], [8080], {}, 'pushprox', '192.0.2.9'));
    assert.deepEqual(targetGroups(registry), [
      {
        targets: ['home-1:9090', 'home-1:9100'],
        labels: {
          location: 'home',
          __meta_natprox_name: 'home-1',
          __meta_natprox_transport: 'native',
          __meta_natprox_remote_address: '198.51.100.1',
          __meta_natprox_connected: 'true',
        },
      },
      {
        targets: ['office:8080'],
        labels: {
          __meta_natprox_name: 'office',
          __meta_natprox_transport: 'pushprox',
          __meta_natprox_remote_address: '192.0.2.9',
          __meta_natprox_connected: 'true',
        },
      },
      {
        targets: ['raspberrypi:9090', 'raspberrypi:9100'],
        labels: {
          location: 'home',
          __meta_natprox_name: 'raspberrypi',
          __meta_natprox_transport: 'native',
          __meta_natprox_remote_address: '198.51.100.1',
          __meta_natprox_connected: 'true',
        },
      },
    ]);
  });

  it('the newest registration of a name gives that name its ports and labels', () => {
    const registry = new SessionRegistry();
    registry.add(session('old', ['pi'], [9100], { gen: 'old' }, 'native', '10.0.0.1'));
    registry.add(session('new', ['pi'], [9100, 9200], { gen: 'new' }, 'native', '10.0.0.2'));
    assert.deepEqual(targetGroups(registry), [
      {
        targets: ['pi:9100', 'pi:9200'],
        labels: {
          gen: 'new',
          __meta_natprox_name: 'pi',
          __meta_natprox_transport: 'native',
          __meta_natprox_remote_address: '10.0.0.2',
          __meta_natprox_connected: 'true',
        },
      },
    ]);
  });

  it('a closed session no longer appears', () => {
    const registry = new SessionRegistry();
    const a = session('a', ['a']);
    registry.add(a);
    registry.add(session('b', ['b']));
    a.close('gone');
    assert.deepEqual(
      targetGroups(registry).map((g) => g.targets),
      [['b:9100']],
    );
  });
});

describe('SessionRegistry', () => {
  it('looks up each registered name', () => {
    const registry = new SessionRegistry();
    const s = session('s', ['a', 'b']);
    registry.add(s);
    assert.equal(registry.lookup('a'), s);
    assert.equal(registry.lookup('b'), s);
    assert.equal(registry.lookup('c'), undefined);
    assert.equal(registry.size, 1);
    assert.deepEqual(registry.all(), [s]);
  });

  it('the newest registration of a name wins', () => {
    const registry = new SessionRegistry();
    const first = session('first', ['pi', 'only-first']);
    const second = session('second', ['pi']);
    registry.add(first);
    registry.add(second);
    assert.equal(registry.lookup('pi'), second);
    assert.equal(registry.lookup('only-first'), first);
    assert.deepEqual(served(registry), { 'only-first': 'first', pi: 'second' });
    assert.equal(registry.size, 2);
  });

  it('removing a session removes its names', () => {
    const registry = new SessionRegistry();
    const s = session('s', ['a', 'b']);
    registry.add(s);
    registry.add(session('t', ['c']));
    s.close('client went away');
    assert.equal(registry.lookup('a'), undefined);
    assert.equal(registry.lookup('b'), undefined);
    assert.deepEqual(served(registry), { c: 't' });
    assert.equal(registry.size, 1);
  });

  it('closing an older session does not remove a name a newer session took over', () => {
    const registry = new SessionRegistry();
    const old = session('old', ['pi', 'legacy']);
    const fresh = session('fresh', ['pi']);
    registry.add(old);
    registry.add(fresh);
    old.close('heartbeat timeout');
    assert.equal(registry.lookup('pi'), fresh);
    assert.equal(registry.lookup('legacy'), undefined);
    assert.deepEqual(served(registry), { pi: 'fresh' });
    assert.deepEqual(registry.all(), [fresh]);
  });

  it('when the newest goes away an older live session serves the name again', () => {
    const registry = new SessionRegistry();
    const old = session('old', ['pi']);
    const fresh = session('fresh', ['pi']);
    registry.add(old);
    registry.add(fresh);
    fresh.close('restarted');
    assert.equal(registry.lookup('pi'), old);
    old.close('gone');
    assert.equal(registry.lookup('pi'), undefined);
    assert.deepEqual(registry.servedNames(), []);
    assert.equal(registry.size, 0);
  });

  it('a session marked closed is skipped even before its close event arrives', () => {
    const registry = new SessionRegistry();
    const old = session('old', ['pi']);
    const fresh = session('fresh', ['pi']);
    registry.add(old);
    registry.add(fresh);
    fresh.closed = true; // dead, but onClose not yet delivered
    assert.equal(registry.lookup('pi'), old);
    assert.deepEqual(registry.all(), [old]);
  });

  it('ignores a session that is already closed', () => {
    const registry = new SessionRegistry();
    const s = session('s', ['pi']);
    s.closed = true;
    registry.add(s);
    assert.equal(registry.size, 0);
    assert.equal(registry.lookup('pi'), undefined);
  });

  it('all() lists live sessions oldest first', () => {
    const registry = new SessionRegistry();
    const a = session('a', ['a']);
    const b = session('b', ['b']);
    const c = session('c', ['c']);
    registry.add(a);
    registry.add(b);
    registry.add(c);
    b.close('x');
    assert.deepEqual(registry.all(), [a, c]);
  });

  it('servedNames() is sorted by name', () => {
    const registry = new SessionRegistry();
    registry.add(session('s1', ['zeta', 'alpha']));
    registry.add(session('s2', ['mid']));
    assert.deepEqual(
      registry.servedNames().map((entry) => entry.name),
      ['alpha', 'mid', 'zeta'],
    );
  });
});

describe('DisconnectedTargets: /clients keeps a departed name, so up goes 0', () => {
  function setUp(maxNames = 10) {
    let now = 0;
    const events = new ProxyEvents();
    const registry = new SessionRegistry();
    const disconnected = new DisconnectedTargets(
      events,
      registry,
      { retentionMs: 1000, maxNames, now: () => now },
      0,
    );
    const connect = (s: FakeSession) => {
      registry.add(s);
      events.emit('tunnelConnected', s);
    };
    const disconnect = (s: FakeSession) => {
      s.close('gone');
      events.emit('tunnelDisconnected', s, 'gone');
    };
    const listed = () =>
      targetGroups(registry, disconnected).map(
        (g) => `${g.targets.join(',')} ${g.labels.__meta_natprox_connected}`,
      );
    return { connect, disconnect, listed, advance: (ms: number) => (now += ms) };
  }

  it('lists a departed name as not connected until the retention ends', () => {
    const { connect, disconnect, listed, advance } = setUp();
    const pi = session('pi', ['pi'], [9100], { location: 'home' });
    connect(pi);
    connect(session('nas', ['nas'], [9100]));
    disconnect(pi);
    assert.deepEqual(listed(), ['nas:9100 true', 'pi:9100 false']);
    advance(999);
    assert.deepEqual(listed(), ['nas:9100 true', 'pi:9100 false']);
    advance(1);
    assert.deepEqual(listed(), ['nas:9100 true']);
  });

  it('a client that comes back is listed once, as connected', () => {
    const { connect, disconnect, listed } = setUp();
    disconnect(session('pi', ['pi']));
    connect(session('pi-again', ['pi'], [9100, 9090]));
    assert.deepEqual(listed(), ['pi:9100,pi:9090 true']);
  });

  it('a name another live session still serves is not departed', () => {
    const { connect, disconnect, listed } = setUp();
    const old = session('old', ['pi']);
    connect(old);
    connect(session('new', ['pi']));
    disconnect(old);
    assert.deepEqual(listed(), ['pi:9100 true']);
  });

  it('forgets a name served for less than minServedMs (a probe, a made-up PushProx name)', () => {
    const events = new ProxyEvents();
    const registry = new SessionRegistry();
    const disconnected = new DisconnectedTargets(
      events,
      registry,
      { retentionMs: 1000, maxNames: 10, now: () => 59_999 },
      60_000,
    );
    const brief = session('brief', ['brief']);
    brief.close('gone');
    events.emit('tunnelDisconnected', brief, 'gone');
    assert.deepEqual(targetGroups(registry, disconnected), []);
  });

  it('keeps at most maxNames departed names, the latest', () => {
    const { disconnect, listed } = setUp(2);
    for (const name of ['a', 'b', 'c']) disconnect(session(name, [name]));
    assert.deepEqual(listed(), ['b:9100 false', 'c:9100 false']);
  });
});

describe('/clients of a real proxy after a client stops', () => {
  it('lists it as not connected, and a scrape of it gets 503 (Prometheus: up 0)', async () => {
    const target = await startTarget((_req, res) => res.end('up 1\n'), after);
    const { port, url } = await startProxy(after, { departedMinServedMs: 0 });
    const client = await startClient(after, {
      proxyUrl: new URL(url),
      names: ['home-pi'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const groups = async () =>
      JSON.parse((await getOrigin(port, '/clients')).body) as TargetGroup[];
    assert.equal((await groups())[0]?.labels.__meta_natprox_connected, 'true');
    await client.stop(0);
    await eventually(
      async () => (await groups())[0]?.labels.__meta_natprox_connected === 'false',
      3000,
      'home-pi listed as not connected',
    );
    assert.deepEqual((await groups())[0]?.targets, [`home-pi:${target.port}`]);
    assert.equal((await scrapeThrough(port, `http://home-pi:${target.port}/metrics`)).status, 503);
  });
});
