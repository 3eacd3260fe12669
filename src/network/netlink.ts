/**
 * Client of berth-netlink (native/net, docs/netlink.md): one long-lived coprocess that configures
 * links, addresses, routes, network namespaces and sysctls over rtnetlink. Node.js cannot open
 * AF_NETLINK sockets, and spawning `ip` per operation costs milliseconds each, so berthd sends
 * batches of operations to this one process instead.
 */
import { nativeBinary } from '../common/native-binary.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { isIP } from 'node:net';
import { BerthError, internal, invalidArgument, unavailable } from '../common/errors.js';

/** One operation. Every batch starts in berthd's own network namespace; `enter` switches. */
export type NetOp =
  /** A new network namespace bind-mounted on path (a new file; its directory must exist), lo up. */
  | { op: 'netns-create'; path: string }
  /** Detach the namespace's mount and remove the file; a missing path is fine. */
  | { op: 'netns-delete'; path: string }
  /** A namespace made ahead (lo up) that the next netns-create hands out; at most one is kept. */
  | { op: 'netns-prepare' }
  /** The following operations of this batch run inside the namespace mounted at path. */
  | { op: 'enter'; path: string }
  /** Create the bridge unless it exists (as a bridge), set its mtu (and mac), bring it up. */
  | { op: 'bridge'; name: string; mtu: number; mac?: string }
  /** A veth pair; the peer is created inside the namespace at netns, already with its final name. */
  | { op: 'veth'; hostName: string; peerName: string; netns: string; mtu: number; peerMac?: string }
  | { op: 'master'; dev: string; bridge: string }
  /** Hairpin mode on a bridge port (traffic may leave through the port it came in). */
  | { op: 'hairpin'; dev: string }
  | { op: 'up'; dev: string }
  | { op: 'down'; dev: string }
  /** A missing link is fine. */
  | { op: 'link-delete'; dev: string }
  | { op: 'mtu'; dev: string; mtu: number }
  /** The link must be down. */
  | { op: 'rename'; dev: string; newName: string }
  /** IPv4 or IPv6 (without duplicate address detection) address/prefix; an existing one is fine. */
  | { op: 'addr'; dev: string; cidr: string }
  /** A missing address is fine. */
  | { op: 'addr-del'; dev: string; cidr: string }
  /** dst is a CIDR or 'default' (then the gateway's family); no gateway: an on-link route. */
  | { op: 'route'; dst: string; gateway?: string; dev: string }
  /** /proc/sys/<key joined by '/'>, e.g. ['net', 'ipv4', 'conf', 'br-1', 'route_localnet']. */
  | { op: 'sysctl'; key: readonly string[]; value: string };

/** berth-netlink's limits (native/net/main.c). */
export const MAX_BATCH_OPS = 256;
export const MAX_LINE_BYTES = 8192;
export const MAX_BATCH_BYTES = 65536;

const IFNAME_MAX = 15;

/** A field is one token of the line protocol: no whitespace, no control characters. */
function field(op: string, name: string, value: string): string {
  if (typeof value !== 'string' || value === '' || /[\s\p{Cc}]/u.test(value)) {
    throw invalidArgument(
      `netlink ${op}: ${name} must be a non-empty string without whitespace, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function ifname(op: string, name: string, value: string): string {
  field(op, name, value);
  if (Buffer.byteLength(value) > IFNAME_MAX || /[/:]/.test(value) || value === '.' || value === '..') {
    throw invalidArgument(
      `netlink ${op}: ${name} ${JSON.stringify(value)} is not a valid interface name (at most ${IFNAME_MAX} bytes, no '/' or ':')`,
    );
  }
  return value;
}

function path(op: string, name: string, value: string): string {
  field(op, name, value);
  if (!value.startsWith('/'))
    throw invalidArgument(`netlink ${op}: ${name} ${JSON.stringify(value)} is not an absolute path`);
  return value;
}

function mtu(op: string, value: number): string {
  if (!Number.isInteger(value) || value < 1 || value > 65536) {
    throw invalidArgument(`netlink ${op}: mtu ${String(value)} is not an integer between 1 and 65536`);
  }
  return String(value);
}

function mac(op: string, name: string, value: string): string {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(value)) {
    throw invalidArgument(
      `netlink ${op}: ${name} ${JSON.stringify(value)} is not a mac address like 02:42:ac:11:00:02`,
    );
  }
  return value;
}

/** An address/prefix; returns its family (4 or 6). */
function cidrFamily(op: string, name: string, value: string): 4 | 6 {
  const match = /^([^/]+)\/(0|[1-9]\d{0,2})$/.exec(value);
  const family = match ? isIP(match[1] ?? '') : 0;
  if (!match || family === 0 || Number(match[2]) > (family === 4 ? 32 : 128)) {
    throw invalidArgument(`netlink ${op}: ${name} ${JSON.stringify(value)} is not an address/prefix`);
  }
  return family === 4 ? 4 : 6;
}

function cidr(op: string, name: string, value: string): string {
  cidrFamily(op, name, value);
  return value;
}

function route(dst: string, gateway: string | undefined): [string, string] {
  const dstFamily = dst === 'default' ? undefined : cidrFamily('route', 'dst', dst);
  if (gateway === undefined) {
    if (dstFamily === undefined) {
      throw invalidArgument(
        'netlink route: a default route needs a gateway (use 0.0.0.0/0 or ::/0 for a device route)',
      );
    }
    return [dst, '-'];
  }
  const gatewayFamily = isIP(gateway);
  if (gatewayFamily === 0)
    throw invalidArgument(`netlink route: gateway ${JSON.stringify(gateway)} is not an IP address`);
  if (dstFamily !== undefined && dstFamily !== gatewayFamily) {
    throw invalidArgument(`netlink route: gateway ${gateway} is not in the address family of ${dst}`);
  }
  return [dst, gateway];
}

function sysctlKey(key: readonly string[]): string {
  if (key.length === 0) throw invalidArgument('netlink sysctl: the key is empty');
  for (const part of key) {
    field('sysctl', 'key', part);
    if (part.includes('/') || part === '.' || part === '..') {
      throw invalidArgument(
        `netlink sysctl: key part ${JSON.stringify(part)} must not be '.', '..' or contain '/'`,
      );
    }
  }
  // Always with slashes: interface names in keys may contain dots.
  return key.join('/');
}

/** The protocol line of one operation; throws invalidArgument for a value it cannot carry. */
export function serializeOp(op: NetOp): string {
  const fields = ((): string[] => {
    switch (op.op) {
      case 'netns-create':
      case 'netns-delete':
      case 'enter':
        return [path(op.op, 'path', op.path)];
      case 'netns-prepare':
        return [];
      case 'bridge':
        return [
          ifname(op.op, 'name', op.name),
          mtu(op.op, op.mtu),
          ...(op.mac === undefined ? [] : [mac(op.op, 'mac', op.mac)]),
        ];
      case 'veth':
        return [
          ifname(op.op, 'hostName', op.hostName),
          ifname(op.op, 'peerName', op.peerName),
          path(op.op, 'netns', op.netns),
          mtu(op.op, op.mtu),
          ...(op.peerMac === undefined ? [] : [mac(op.op, 'peerMac', op.peerMac)]),
        ];
      case 'master':
        return [ifname(op.op, 'dev', op.dev), ifname(op.op, 'bridge', op.bridge)];
      case 'up':
      case 'down':
      case 'hairpin':
      case 'link-delete':
        return [ifname(op.op, 'dev', op.dev)];
      case 'mtu':
        return [ifname(op.op, 'dev', op.dev), mtu(op.op, op.mtu)];
      case 'rename':
        return [ifname(op.op, 'dev', op.dev), ifname(op.op, 'newName', op.newName)];
      case 'addr':
      case 'addr-del':
        return [ifname(op.op, 'dev', op.dev), cidr(op.op, 'cidr', op.cidr)];
      case 'route':
        return [...route(op.dst, op.gateway), ifname(op.op, 'dev', op.dev)];
      case 'sysctl':
        return [sysctlKey(op.key), field(op.op, 'value', op.value)];
      default: {
        const unknown: never = op;
        throw invalidArgument(
          `netlink: unknown operation ${JSON.stringify((unknown as { op: unknown }).op)}`,
        );
      }
    }
  })();
  const line = [op.op, ...fields].join(' ');
  if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
    throw invalidArgument(`netlink ${op.op}: the operation is longer than ${MAX_LINE_BYTES} bytes`);
  }
  return line;
}

/** A whole batch as written to berth-netlink: one line per operation, then an empty line. */
export function serializeBatch(ops: readonly NetOp[]): string {
  if (ops.length === 0) throw invalidArgument('netlink: a batch needs at least one operation');
  if (ops.length > MAX_BATCH_OPS) {
    throw invalidArgument(`netlink: a batch has at most ${MAX_BATCH_OPS} operations, got ${ops.length}`);
  }
  const lines = ops.map(serializeOp);
  const bytes = lines.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0);
  if (bytes > MAX_BATCH_BYTES)
    throw invalidArgument(`netlink: a batch is larger than ${MAX_BATCH_BYTES} bytes`);
  return lines.join('\n') + '\n\n';
}

/** An operation berth-netlink could not carry out; the operations before it took effect. */
export class NetlinkError extends BerthError {
  constructor(
    /** 1-based position of the failed operation in its batch. */
    readonly index: number,
    readonly op: NetOp | undefined,
    /** berth-netlink's message: the operation line, strerror and the kernel's explanation. */
    readonly detail: string,
  ) {
    super('internal', `network configuration failed: ${detail}`);
    this.name = 'NetlinkError';
  }
}

/** Parses one answer line: undefined for `ok`, else the error it reports. */
export function parseAnswer(line: string, ops: readonly NetOp[]): NetlinkError | undefined {
  if (line === 'ok') return undefined;
  const match = /^error (\d+) (.*)$/.exec(line);
  if (!match) throw internal(`berth-netlink said something unexpected: ${JSON.stringify(line)}`);
  const index = Number(match[1]);
  return new NetlinkError(index, ops[index - 1], match[2] ?? '');
}

/** $BERTH_NETLINK, else native/build/berth-netlink of the checkout this code runs from. */
export function netlinkPath(): string {
  const path = nativeBinary('berth-netlink', 'BERTH_NETLINK');
  if (path === undefined)
    throw unavailable('berth-netlink is not built: run `npm run build` (or set BERTH_NETLINK to its path)');
  return path;
}

/** How long close() lets the coprocess finish its queued batches before killing it. */
const CLOSE_GRACE_MS = 5000;
const STDERR_KEEP = 2048;

interface Pending {
  resolve: (line: string) => void;
  reject: (err: Error) => void;
}

/** One running berth-netlink: batches in on stdin, one answer line each on stdout, in order. */
class Coprocess {
  private readonly child: ChildProcess;
  private readonly pending: Pending[] = [];
  private stdout = '';
  private stderr = '';
  private failure: BerthError | undefined;
  readonly closed: Promise<void>;

  constructor(binary: string) {
    this.child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin?.on('error', () => undefined); // a dead child shows up as 'close' below
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => this.onData(chunk));
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_KEEP);
    });
    this.child.on('error', (err) =>
      this.fail(unavailable(`cannot run berth-netlink (${binary}): ${err.message}`)),
    );
    // 'close' comes after stdout ended, so every answer written before an exit is delivered first.
    this.closed = new Promise((resolve) =>
      this.child.once('close', (code, signal) => {
        const how = signal ? `was killed by ${signal}` : `exited with ${String(code)}`;
        const said = this.stderr.trim();
        this.fail(unavailable(`berth-netlink ${how}${said ? `: ${said}` : ''}`));
        resolve();
      }),
    );
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  send(batch: string): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin?.write(batch);
    });
  }

  private onData(chunk: string): void {
    this.stdout += chunk;
    let newline: number;
    while ((newline = this.stdout.indexOf('\n')) >= 0) {
      const line = this.stdout.slice(0, newline);
      this.stdout = this.stdout.slice(newline + 1);
      const waiter = this.pending.shift();
      if (waiter) waiter.resolve(line);
      else this.kill(internal(`berth-netlink answered a batch it was not sent: ${JSON.stringify(line)}`));
    }
  }

  /** Rejects every batch in flight and marks the process unusable. */
  private fail(err: BerthError): void {
    if (!this.failure) this.failure = err;
    for (const waiter of this.pending.splice(0)) waiter.reject(this.failure);
  }

  kill(err: BerthError): void {
    this.fail(err);
    this.child.kill('SIGKILL');
  }

  /** EOF on stdin: berth-netlink answers what it was sent and exits; killed if it takes too long. */
  async close(): Promise<void> {
    this.child.stdin?.end();
    const timer = setTimeout(
      () => this.kill(unavailable('berth-netlink did not exit when closed')),
      CLOSE_GRACE_MS,
    );
    await this.closed;
    clearTimeout(timer);
  }
}

export class Netlink {
  private coprocess: Coprocess | undefined;
  private closing = false;

  private constructor(private readonly binary: string) {
    this.coprocess = new Coprocess(binary);
  }

  /** Starts berth-netlink (default: netlinkPath()). */
  static start(binaryPath: string = netlinkPath()): Netlink {
    return new Netlink(binaryPath);
  }

  /**
   * Runs one batch. Batches run one after another in call order; a batch stops at its first
   * failed operation (NetlinkError; nothing is undone). If berth-netlink died, it is started again
   * and batches that were in flight reject with an `unavailable` error.
   */
  async run(ops: readonly NetOp[]): Promise<void> {
    if (ops.length === 0) return;
    const batch = serializeBatch(ops);
    if (this.closing) throw unavailable('the berth-netlink client is closed');
    if (!this.coprocess?.alive) this.coprocess = new Coprocess(this.binary);
    const proc = this.coprocess;
    const line = await proc.send(batch);
    let error: NetlinkError | undefined;
    try {
      error = parseAnswer(line, ops);
    } catch (err) {
      // Out of step with the protocol: later answers cannot be trusted, so start afresh.
      if (err instanceof BerthError) proc.kill(err);
      throw err;
    }
    if (error) throw error;
  }

  /** Lets queued batches finish, then stops berth-netlink. */
  async close(): Promise<void> {
    this.closing = true;
    const proc = this.coprocess;
    this.coprocess = undefined;
    await proc?.close();
  }
}
