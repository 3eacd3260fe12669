/**
 * berth-runtime: the OCI runtime command line, following the interface runc and crun implement
 * (global --root/--log/--log-format/--debug/--systemd-cgroup; create, start, state, kill, delete,
 * run, exec, ps, pause, resume, list, features, spec).
 */
import { appendFileSync, writeFileSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { BERTH_VERSION, OCI_RUNTIME_SPEC_VERSION } from '../common/version.js';
import { BerthError, describeError, invalidArgument } from '../common/errors.js';
import { parseArgs, flagBool, flagValue, flagValues, type FlagSpec, type ParsedArgs } from '../cli/args.js';
import type { Process } from '../oci/runtime-spec.js';
import { defaultSpec } from '../oci/defaults.js';
import { ALL_CAPABILITIES } from '../linux/capabilities.js';
import { Runtime } from './runtime.js';
import { defaultRuntimeOptions } from './default-runtime.js';
import { ExecFailedError } from './shim-process.js';
import { parseSignal } from './signals.js';

const runProgram = promisify(execFile);

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'root', value: true, aliases: ['-root'] },
  { name: 'log', value: true, aliases: ['-log'] },
  { name: 'log-format', value: true, aliases: ['-log-format'] },
  { name: 'debug', aliases: ['-debug'] },
  { name: 'systemd-cgroup', aliases: ['-systemd-cgroup'] },
  { name: 'criu', value: true },
  { name: 'rootless', value: true },
  { name: 'version', short: 'v' },
  { name: 'help', short: 'h' },
];

const CREATE_FLAGS: FlagSpec[] = [
  { name: 'bundle', short: 'b', value: true },
  { name: 'console-socket', value: true },
  { name: 'pid-file', value: true },
  { name: 'no-pivot' },
  { name: 'no-new-keyring' },
  { name: 'preserve-fds', value: true },
  { name: 'pidfd-socket', value: true },
];

const COMMAND_FLAGS: Record<string, FlagSpec[]> = {
  create: CREATE_FLAGS,
  run: [...CREATE_FLAGS, { name: 'detach', short: 'd' }, { name: 'keep' }],
  start: [],
  state: [],
  kill: [{ name: 'all', short: 'a' }],
  delete: [{ name: 'force', short: 'f' }],
  exec: [
    { name: 'process', short: 'p', value: true },
    { name: 'console-socket', value: true },
    { name: 'pid-file', value: true },
    { name: 'tty', short: 't' },
    { name: 'env', short: 'e', value: true, multiple: true },
    { name: 'cwd', value: true },
    { name: 'user', short: 'u', value: true },
    { name: 'additional-gids', short: 'g', value: true, multiple: true },
    { name: 'detach', short: 'd' },
    { name: 'cap', short: 'c', value: true, multiple: true },
    { name: 'no-new-privs' },
    { name: 'preserve-fds', value: true },
    { name: 'apparmor', value: true },
    { name: 'process-label', value: true },
    { name: 'cgroup', value: true },
  ],
  ps: [{ name: 'format', short: 'f', value: true }],
  pause: [],
  resume: [],
  list: [
    { name: 'format', short: 'f', value: true },
    { name: 'quiet', short: 'q' },
  ],
  features: [],
  spec: [{ name: 'bundle', short: 'b', value: true }, { name: 'rootless' }],
};

const USAGE = `Usage: berth-runtime [global options] COMMAND [options] <container-id>

An OCI runtime (runtime-spec ${OCI_RUNTIME_SPEC_VERSION}).

Commands: create, start, state, kill, delete, run, exec, ps, pause, resume, list, features, spec

Global options:
  --root DIR          state directory (default /run/berth-runtime)
  --log FILE          write log messages to FILE
  --log-format FMT    text or json (default text)
  --debug             log debug messages
  --systemd-cgroup    systemd "slice:prefix:name" cgroup paths (needs a running systemd)
  -v, --version       print the version
`;

interface Logger {
  error(message: string): void;
  debug(message: string): void;
}

function makeLogger(parsed: ParsedArgs): Logger {
  const file = flagValue(parsed, 'log');
  const format = flagValue(parsed, 'log-format') ?? 'text';
  if (format !== 'text' && format !== 'json')
    throw invalidArgument(`unknown log format ${JSON.stringify(format)}`);
  const debug = flagBool(parsed, 'debug');
  const write = (level: string, message: string): void => {
    if (!file) return;
    const time = new Date().toISOString();
    const line =
      format === 'json'
        ? JSON.stringify({ level, msg: message, time }) + '\n'
        : `time="${time}" level=${level} msg=${JSON.stringify(message)}\n`;
    try {
      appendFileSync(file, line);
    } catch {
      // the log is best effort; the error still goes to stderr
    }
  };
  return {
    error: (message) => write('error', message),
    debug: (message) => {
      if (debug) write('debug', message);
    },
  };
}

function requireId(positional: string[], command: string): string {
  const id = positional[0];
  if (!id) throw invalidArgument(`"${command}" requires a container id`);
  return id;
}

function parseUser(value: string): { uid: number; gid: number } {
  const match = /^(\d+)(?::(\d+))?$/.exec(value);
  if (!match) throw invalidArgument(`invalid --user ${JSON.stringify(value)}: use UID[:GID] with numbers`);
  return { uid: Number(match[1]), gid: Number(match[2] ?? 0) };
}

async function execProcess(
  parsed: ParsedArgs,
  args: string[],
  runtime: Runtime,
  id: string,
): Promise<Process> {
  const processFile = flagValue(parsed, 'process');
  if (processFile) {
    let value: unknown;
    try {
      value = JSON.parse(await readFile(processFile, 'utf8'));
    } catch (err) {
      throw invalidArgument(`--process ${processFile}: ${describeError(err)}`);
    }
    return value as Process;
  }
  if (args.length === 0) throw invalidArgument('exec needs a command (or --process FILE)');
  const record = await runtime.store.load(id);
  const base = record.config.process;
  const user = flagValue(parsed, 'user');
  const caps = flagValues(parsed, 'cap');
  const process: Process = {
    terminal: flagBool(parsed, 'tty'),
    user: user ? parseUser(user) : { uid: base?.user.uid ?? 0, gid: base?.user.gid ?? 0 },
    args,
    env: [...(base?.env ?? []), ...flagValues(parsed, 'env')],
    cwd: flagValue(parsed, 'cwd') ?? base?.cwd ?? '/',
    capabilities: base?.capabilities,
    noNewPrivileges: flagBool(parsed, 'no-new-privs') || base?.noNewPrivileges,
    rlimits: base?.rlimits,
  };
  const gids = flagValues(parsed, 'additional-gids').map(Number);
  if (gids.length > 0) process.user.additionalGids = gids;
  if (caps.length > 0) {
    const add = (set: string[] | undefined): string[] => [...new Set([...(set ?? []), ...caps])];
    const c = process.capabilities ?? {};
    process.capabilities = {
      ...c,
      bounding: add(c.bounding),
      effective: add(c.effective),
      permitted: add(c.permitted),
    };
  }
  return process;
}

function featuresDocument(): unknown {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_RUNTIME_SPEC_VERSION,
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: [
      'async',
      'atime',
      'bind',
      'defaults',
      'dev',
      'diratime',
      'dirsync',
      'exec',
      'lazytime',
      'mand',
      'noatime',
      'nodev',
      'nodiratime',
      'noexec',
      'nolazytime',
      'nomand',
      'norelatime',
      'nostrictatime',
      'nosuid',
      'nosymfollow',
      'private',
      'rbind',
      'relatime',
      'remount',
      'ro',
      'rprivate',
      'rshared',
      'rslave',
      'runbindable',
      'rw',
      'shared',
      'slave',
      'strictatime',
      'suid',
      'symfollow',
      'sync',
      'unbindable',
    ],
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts', 'time'],
      capabilities: ALL_CAPABILITIES,
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      seccomp: {
        enabled: true,
        actions: [
          'SCMP_ACT_ALLOW',
          'SCMP_ACT_ERRNO',
          'SCMP_ACT_KILL',
          'SCMP_ACT_KILL_PROCESS',
          'SCMP_ACT_KILL_THREAD',
          'SCMP_ACT_LOG',
          'SCMP_ACT_NOTIFY',
          'SCMP_ACT_TRACE',
          'SCMP_ACT_TRAP',
        ],
        operators: [
          'SCMP_CMP_EQ',
          'SCMP_CMP_GE',
          'SCMP_CMP_GT',
          'SCMP_CMP_LE',
          'SCMP_CMP_LT',
          'SCMP_CMP_MASKED_EQ',
          'SCMP_CMP_NE',
        ],
        archs: ['SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'],
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: { 'org.berth.runtime.version': BERTH_VERSION },
  };
}

function table(rows: string[][]): string {
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return (
    rows
      .map((row) =>
        row
          .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 3)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** Forward the usual terminating signals to the container while `run` waits in the foreground. */
function forwardSignals(pid: number): () => void {
  const signals: NodeJS.Signals[] = [
    'SIGINT',
    'SIGTERM',
    'SIGHUP',
    'SIGQUIT',
    'SIGUSR1',
    'SIGUSR2',
    'SIGWINCH',
  ];
  const handler = (signal: NodeJS.Signals): void => {
    try {
      process.kill(pid, signal);
    } catch {
      // the container is gone
    }
  };
  for (const signal of signals) process.on(signal, handler);
  return () => {
    for (const signal of signals) process.off(signal, handler);
  };
}

async function dispatch(
  command: string,
  rest: string[],
  global: ParsedArgs,
  logger: Logger,
): Promise<number> {
  const specs = COMMAND_FLAGS[command];
  if (!specs) throw invalidArgument(`unknown command ${JSON.stringify(command)}; see berth-runtime --help`);
  const parsed = parseArgs(rest, specs, { stopAtPositional: command === 'exec' || command === 'ps' });
  const root = flagValue(global, 'root') ?? '/run/berth-runtime';
  // One container per invocation: a shim started ahead of need would only be wasted.
  const runtime = new Runtime(defaultRuntimeOptions(root, flagBool(global, 'systemd-cgroup'), false));
  const bundle = resolve(flagValue(parsed, 'bundle') ?? '.');
  const preserveFds = Number(flagValue(parsed, 'preserve-fds') ?? '0');
  if (!Number.isInteger(preserveFds) || preserveFds < 0)
    throw invalidArgument('--preserve-fds must be a non-negative integer');
  logger.debug(`${command} ${rest.join(' ')}`);

  switch (command) {
    case 'create': {
      const id = requireId(parsed.positional, command);
      await runtime.create(id, {
        bundle,
        consoleSocket: flagValue(parsed, 'console-socket'),
        pidFile: flagValue(parsed, 'pid-file'),
        preserveFds,
        noPivot: flagBool(parsed, 'no-pivot'),
      });
      return 0;
    }
    case 'start':
      await runtime.start(requireId(parsed.positional, command));
      return 0;
    case 'state':
      process.stdout.write(
        JSON.stringify(await runtime.state(requireId(parsed.positional, command)), null, 2) + '\n',
      );
      return 0;
    case 'kill': {
      const id = requireId(parsed.positional, command);
      await runtime.kill(id, parsed.positional[1] ?? 'SIGTERM', flagBool(parsed, 'all'));
      return 0;
    }
    case 'delete':
      await runtime.delete(requireId(parsed.positional, command), flagBool(parsed, 'force'));
      return 0;
    case 'run': {
      const id = requireId(parsed.positional, command);
      const detach = flagBool(parsed, 'detach');
      const { shim } = await runtime.create(id, {
        bundle,
        consoleSocket: flagValue(parsed, 'console-socket'),
        pidFile: flagValue(parsed, 'pid-file'),
        preserveFds,
        noPivot: flagBool(parsed, 'no-pivot'),
        foreground: !detach,
      });
      if (detach) {
        await runtime.start(id);
        return 0;
      }
      const stopForwarding = forwardSignals(shim.pid);
      try {
        await runtime.start(id);
        const code = await shim.exited;
        return code;
      } finally {
        stopForwarding();
        if (!flagBool(parsed, 'keep')) await runtime.delete(id, true).catch(() => undefined);
      }
    }
    case 'exec': {
      const id = requireId(parsed.positional, command);
      const processSpec = await execProcess(parsed, parsed.positional.slice(1), runtime, id);
      const detach = flagBool(parsed, 'detach');
      try {
        const { shim } = await runtime.exec(id, processSpec, {
          detach,
          consoleSocket: flagValue(parsed, 'console-socket'),
          pidFile: flagValue(parsed, 'pid-file'),
          preserveFds,
        });
        if (detach) return 0;
        const stop = forwardSignals(shim.pid);
        try {
          return await shim.exited;
        } finally {
          stop();
        }
      } catch (err) {
        if (err instanceof ExecFailedError) {
          process.stderr.write(`berth-runtime: ${err.message}\n`);
          return err.exitCode;
        }
        throw err;
      }
    }
    case 'ps': {
      const id = requireId(parsed.positional, command);
      const pids = await runtime.pids(id);
      const format = flagValue(parsed, 'format') ?? 'table';
      if (format === 'json') {
        process.stdout.write(JSON.stringify(pids) + '\n');
        return 0;
      }
      if (format !== 'table') throw invalidArgument(`unknown format ${JSON.stringify(format)}`);
      const psArgs = parsed.positional.length > 1 ? parsed.positional.slice(1) : ['-ef'];
      const { stdout } = await runProgram('ps', psArgs);
      const [header = '', ...lines] = stdout.split('\n');
      const pidColumn = header.trim().split(/\s+/).indexOf('PID');
      if (pidColumn < 0) throw invalidArgument(`ps ${psArgs.join(' ')} prints no PID column`);
      const wanted = new Set(pids.map(String));
      process.stdout.write(`${header}\n`);
      for (const line of lines) {
        if (wanted.has(line.trim().split(/\s+/)[pidColumn] ?? '')) process.stdout.write(`${line}\n`);
      }
      return 0;
    }
    case 'pause':
      await runtime.pause(requireId(parsed.positional, command));
      return 0;
    case 'resume':
      await runtime.resume(requireId(parsed.positional, command));
      return 0;
    case 'list': {
      const containers = await runtime.list();
      const format = flagValue(parsed, 'format') ?? 'table';
      if (flagBool(parsed, 'quiet')) {
        process.stdout.write(containers.map((c) => `${c.record.id}\n`).join(''));
      } else if (format === 'json') {
        const items = containers.map(({ record, status }) => ({
          ociVersion: OCI_RUNTIME_SPEC_VERSION,
          id: record.id,
          pid: status === 'stopped' ? 0 : record.pid,
          status,
          bundle: record.bundle,
          rootfs: record.rootfs,
          created: record.created,
          annotations: record.config.annotations ?? {},
          owner: record.owner === '0' ? 'root' : record.owner,
        }));
        process.stdout.write(JSON.stringify(items) + '\n');
      } else if (format === 'table') {
        const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']];
        for (const { record, status } of containers) {
          rows.push([
            record.id,
            status === 'stopped' ? '0' : String(record.pid),
            status,
            record.bundle,
            record.created,
            record.owner === '0' ? 'root' : record.owner,
          ]);
        }
        process.stdout.write(table(rows));
      } else {
        throw invalidArgument(`unknown format ${JSON.stringify(format)}`);
      }
      return 0;
    }
    case 'features':
      process.stdout.write(JSON.stringify(featuresDocument(), null, 2) + '\n');
      return 0;
    case 'spec': {
      const path = join(bundle, 'config.json');
      if (existsSync(path)) throw new BerthError('conflict', `${path} already exists; remove it first`);
      writeFileSync(path, JSON.stringify(defaultSpec(), null, 2) + '\n');
      return 0;
    }
  }
  return 0;
}

/** Entry point of the berth-runtime command line; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let logger: Logger = { error: () => undefined, debug: () => undefined };
  try {
    const global = parseArgs(args, GLOBAL_FLAGS, { stopAtPositional: true });
    logger = makeLogger(global);
    if (flagBool(global, 'version')) {
      process.stdout.write(`berth-runtime version ${BERTH_VERSION}\nspec: ${OCI_RUNTIME_SPEC_VERSION}\n`);
      return 0;
    }
    const [command, ...rest] = global.positional;
    if (flagBool(global, 'help') || command === undefined || command === 'help') {
      process.stdout.write(USAGE);
      return command === undefined && !flagBool(global, 'help') ? 1 : 0;
    }
    return await dispatch(command, rest, global, logger);
  } catch (err) {
    const message = describeError(err);
    logger.error(message);
    process.stderr.write(`berth-runtime: ${message}\n`);
    if (!(err instanceof BerthError) && process.env.BERTH_DEBUG)
      process.stderr.write(`${String((err as Error).stack)}\n`);
    return 1;
  }
}

export { parseSignal };
