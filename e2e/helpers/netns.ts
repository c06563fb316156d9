/**
 * A home and a VPS, each in a network namespace of its own, joined by a veth pair whose
 * addresses exist only inside the two namespaces. The home has no inbound path: its nftables
 * input chain drops every NEW connection arriving on the veth. Faults are nftables rules
 * (packets vanish, no RST) and address moves, applied and healed by the test.
 *
 * Needs root (ip netns, nft), as CI has. Everything made here is removed by `destroy()`, by
 * an exit hook if the test process dies first, and by the sweep of stale namespaces from
 * earlier runs that every new `NetnsPair` starts with.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ProcessGroup, RunningProcess, StartOptions } from './processes.js';

/** Every namespace these tests make starts with this, then the pid of the test process. */
export const NAMESPACE_PREFIX = 'npxt';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const HOME_IF = 'home0';
export const VPS_IF = 'vps0';
/** The VPS end of the link, and the home's first address. */
export const VPS_ADDRESS = '10.231.0.1';
export const HOME_ADDRESS = '10.231.0.2';
const PREFIX_LENGTH = 24;

/** Table names of the home namespace's nftables rules. */
const NO_INBOUND_TABLE = 'natprox_no_inbound';
const FAULT_TABLE = 'natprox_fault';

function run(command: string, args: string[], input?: string): string {
  try {
    return execFileSync(command, args, {
      encoding: 'utf8',
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || String(err)}`, {
      cause: err,
    });
  }
}

/** Fails with what to do when this process cannot make namespaces or nftables rules. */
export function requireNetnsTools(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the network-namespace tests need root (ip netns, nft): run them as root, as CI does',
    );
  }
  for (const [command, pkg] of [
    ['ip', 'iproute2'],
    ['nft', 'nftables'],
  ] as const) {
    try {
      execFileSync(command, ['-V'], { stdio: 'ignore' });
    } catch {
      throw new Error(
        `the network-namespace tests need ${command} from the Debian package ${pkg}: apt-get install -y ${pkg} (npm test installs it through scripts/ensure-debian-packages.sh)`,
      );
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes the namespaces of earlier runs whose test process is gone. */
export function sweepStaleNamespaces(): string[] {
  const swept: string[] = [];
  const listed = run('ip', ['netns', 'list']);
  for (const line of listed.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const match = new RegExp(`^${NAMESPACE_PREFIX}(\\d+)[a-z]\\d*$`).exec(name);
    if (!match || pidAlive(Number(match[1]))) continue;
    killNamespaceProcesses(name);
    try {
      run('ip', ['netns', 'del', name]);
      swept.push(name);
    } catch {
      // another run swept it first
    }
  }
  return swept;
}

function killNamespaceProcesses(ns: string): void {
  try {
    const pids = run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  } catch {
    // namespace already gone
  }
}

const live = new Set<NetnsPair>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pair of live) pair.destroySync();
  });
}

let pairCount = 0;

/** The two namespaces, the link between them, and the faults a test can put on it. */
export class NetnsPair {
  readonly home: string;
  readonly vps: string;
  private homeAddress = HOME_ADDRESS;
  private destroyed = false;

  constructor() {
    requireNetnsTools();
    sweepStaleNamespaces();
    pairCount += 1;
    this.home = `${NAMESPACE_PREFIX}${process.pid}h${pairCount}`;
    this.vps = `${NAMESPACE_PREFIX}${process.pid}v${pairCount}`;
    live.add(this);
    installExitHook();
    try {
      run('ip', ['netns', 'add', this.home]);
      run('ip', ['netns', 'add', this.vps]);
      run('ip', ['link', 'add', HOME_IF, 'netns', this.home, 'type', 'veth', 'peer', 'name', VPS_IF, 'netns', this.vps]); // prettier-ignore
      for (const [ns, dev, address] of [
        [this.home, HOME_IF, HOME_ADDRESS],
        [this.vps, VPS_IF, VPS_ADDRESS],
      ] as const) {
        run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        run('ip', ['-n', ns, 'addr', 'add', `${address}/${PREFIX_LENGTH}`, 'dev', dev]);
        run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      }
      // No inbound path to the home: nothing from the VPS side may open a connection.
      this.nft(`table inet ${NO_INBOUND_TABLE} {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "${HOME_IF}" ct state new drop
  }
}`);
    } catch (err) {
      this.destroySync();
      throw err;
    }
  }

  /** The home's current address on the link. */
  get currentHomeAddress(): string {
    return this.homeAddress;
  }

  private nft(ruleset: string): void {
    run('ip', ['netns', 'exec', this.home, 'nft', '-f', '-'], `${ruleset}\n`);
  }

  /** Starts `command ARGS` inside namespace `ns` (ip netns exec execs it: same pid). */
  start(
    group: ProcessGroup,
    ns: string,
    name: string,
    command: string,
    args: string[],
    options: StartOptions = {},
  ): RunningProcess {
    return group.start(name, 'ip', ['netns', 'exec', ns, command, ...args], {
      cwd: ROOT,
      ...options,
    });
  }

  /** Runs natprox (the built bin/natprox.js) inside `ns`. */
  startNatprox(group: ProcessGroup, ns: string, name: string, args: string[]): RunningProcess {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NODE_OPTIONS;
    return this.start(group, ns, name, process.execPath, ['bin/natprox.js', ...args], { env });
  }

  /** Runs a TypeScript helper script (through tsx) inside `ns`. */
  startScript(
    group: ProcessGroup,
    ns: string,
    name: string,
    script: string,
    args: string[],
    options: StartOptions = {},
  ): RunningProcess {
    return this.start(group, ns, name, process.execPath, ['--import', 'tsx', script, ...args], options); // prettier-ignore
  }

  /** Every packet on the link dropped, both ways, with no RST or ICMP: a dead home line. */
  blackhole(): void {
    this.fault(['drop', 'drop']);
  }

  /** Packets from the home to the VPS dropped; the VPS still reaches the home. */
  dropHomeToVps(): void {
    this.fault(['accept', 'drop']);
  }

  private fault([input, output]: [string, string]): void {
    this.heal();
    this.nft(`table inet ${FAULT_TABLE} {
  chain input {
    type filter hook input priority -10; policy accept;
    iifname "${HOME_IF}" ${input}
  }
  chain output {
    type filter hook output priority -10; policy accept;
    oifname "${HOME_IF}" ${output}
  }
}`);
  }

  /** Removes the fault rules (the no-inbound rule stays). */
  heal(): void {
    try {
      run('ip', ['netns', 'exec', this.home, 'nft', 'delete', 'table', 'inet', FAULT_TABLE]);
    } catch {
      // no fault in place
    }
  }

  /**
   * The home's address changes, as when a NAT rebinds or the ISP hands out a new address:
   * the old address goes away, so flows that used it die without a word to either end.
   */
  moveHomeAddress(): string {
    const [a, b, c, d] = this.homeAddress.split('.').map(Number) as [number, number, number, number]; // prettier-ignore
    const next = `${a}.${b}.${c}.${d >= 250 ? 2 : d + 1}`;
    run('ip', ['-n', this.home, 'addr', 'del', `${this.homeAddress}/${PREFIX_LENGTH}`, 'dev', HOME_IF]); // prettier-ignore
    run('ip', ['-n', this.home, 'addr', 'add', `${next}/${PREFIX_LENGTH}`, 'dev', HOME_IF]);
    this.homeAddress = next;
    return next;
  }

  /** Kills what still runs inside, then deletes both namespaces (the veth goes with them). */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const ns of [this.home, this.vps]) {
      killNamespaceProcesses(ns);
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // not made, or gone already
      }
    }
  }

  /** Stops `group`'s processes (politely first), then removes the namespaces. */
  async destroy(group?: ProcessGroup): Promise<void> {
    if (group) await group.stopAll();
    this.destroySync();
  }
}
