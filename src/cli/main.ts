/**
 * berth's entry point: global flags (-H, --config, --tls...), then a command by its docker name
 * (`ps`, `container ls`, `image rm`, ...). Command modules load lazily so `berth --version` and
 * small commands stay fast. Errors are printed once, without a stack trace, and mapped to docker's
 * exit codes.
 */
import { BERTH_VERSION } from '../common/version.js';
import { BerthError } from '../common/errors.js';
import { parseArgs, flagBool, flagValue, flagValues } from './args.js';
import { helpText, parseCommand, type CommandDef, type Invocation } from './command.js';
import { CliContext, type Streams } from './context.js';
import { ApiError, CommandError, ConnectError, StatusError, UsageError } from './errors.js';

type Module = Record<string, CommandDef>;
type Ref = [loader: () => Promise<Module>, key: string];

const load = {
  lifecycle: () => import('./commands/lifecycle.js').then((m) => m.commands),
  run: () => import('./commands/run.js').then((m) => m.commands),
  attach: () => import('./commands/attach.js').then((m) => m.commands),
  exec: () => import('./commands/exec.js').then((m) => m.commands),
  logs: () => import('./commands/logs.js').then((m) => m.commands),
  ps: () => import('./commands/ps.js').then((m) => m.commands),
  stats: () => import('./commands/stats.js').then((m) => m.commands),
  archive: () => import('./commands/archive.js').then((m) => m.commands),
  images: () => import('./commands/images.js').then((m) => m.commands),
  transfer: () => import('./commands/transfer.js').then((m) => m.commands),
  inspect: () => import('./commands/inspect.js').then((m) => m.commands),
  volume: () => import('./commands/volume.js').then((m) => m.commands),
  network: () => import('./commands/network.js').then((m) => m.commands),
  system: () => import('./commands/system.js').then((m) => m.commands),
  login: () => import('./commands/login.js').then((m) => m.commands),
  build: () => import('./commands/build.js').then((m) => m.commands),
  builder: () => import('./commands/builder.js').then((m) => m.commands),
  cp: () => import('./commands/cp.js').then((m) => m.commands),
};

const GROUPS: Record<string, { description: string; commands: Record<string, Ref> }> = {
  container: {
    description: 'Manage containers',
    commands: {
      attach: [load.attach, 'attach'],
      commit: [load.images, 'commit'],
      cp: [load.cp, 'cp'],
      create: [load.run, 'create'],
      diff: [load.lifecycle, 'diff'],
      exec: [load.exec, 'exec'],
      export: [load.archive, 'export'],
      inspect: [load.inspect, 'container inspect'],
      kill: [load.lifecycle, 'kill'],
      logs: [load.logs, 'logs'],
      ls: [load.ps, 'ps'],
      list: [load.ps, 'ps'],
      ps: [load.ps, 'ps'],
      pause: [load.lifecycle, 'pause'],
      port: [load.lifecycle, 'port'],
      prune: [load.lifecycle, 'container prune'],
      rename: [load.lifecycle, 'rename'],
      restart: [load.lifecycle, 'restart'],
      rm: [load.lifecycle, 'rm'],
      remove: [load.lifecycle, 'rm'],
      run: [load.run, 'run'],
      start: [load.attach, 'start'],
      stats: [load.stats, 'stats'],
      stop: [load.lifecycle, 'stop'],
      top: [load.lifecycle, 'top'],
      unpause: [load.lifecycle, 'unpause'],
      update: [load.lifecycle, 'update'],
      wait: [load.lifecycle, 'wait'],
    },
  },
  image: {
    description: 'Manage images',
    commands: {
      build: [load.build, 'build'],
      history: [load.images, 'history'],
      import: [load.transfer, 'import'],
      inspect: [load.inspect, 'image inspect'],
      load: [load.transfer, 'load'],
      ls: [load.images, 'images'],
      list: [load.images, 'images'],
      prune: [load.images, 'image prune'],
      pull: [load.transfer, 'pull'],
      push: [load.transfer, 'push'],
      rm: [load.images, 'rmi'],
      remove: [load.images, 'rmi'],
      save: [load.transfer, 'save'],
      tag: [load.images, 'tag'],
    },
  },
  volume: {
    description: 'Manage volumes',
    commands: {
      create: [load.volume, 'create'],
      inspect: [load.inspect, 'volume inspect'],
      ls: [load.volume, 'ls'],
      list: [load.volume, 'ls'],
      prune: [load.volume, 'prune'],
      rm: [load.volume, 'rm'],
      remove: [load.volume, 'rm'],
    },
  },
  network: {
    description: 'Manage networks',
    commands: {
      connect: [load.network, 'connect'],
      create: [load.network, 'create'],
      disconnect: [load.network, 'disconnect'],
      inspect: [load.inspect, 'network inspect'],
      ls: [load.network, 'ls'],
      list: [load.network, 'ls'],
      prune: [load.network, 'prune'],
      rm: [load.network, 'rm'],
      remove: [load.network, 'rm'],
    },
  },
  builder: {
    description: 'Manage builds',
    commands: {
      build: [load.build, 'build'],
      prune: [load.builder, 'builder prune'],
    },
  },
  system: {
    description: 'Manage berth',
    commands: {
      df: [load.system, 'df'],
      events: [load.system, 'events'],
      info: [load.system, 'info'],
      prune: [load.system, 'system prune'],
    },
  },
};

const TOP: Record<string, Ref> = {
  attach: [load.attach, 'attach'],
  build: [load.build, 'build'],
  commit: [load.images, 'commit'],
  cp: [load.cp, 'cp'],
  create: [load.run, 'create'],
  diff: [load.lifecycle, 'diff'],
  events: [load.system, 'events'],
  exec: [load.exec, 'exec'],
  export: [load.archive, 'export'],
  history: [load.images, 'history'],
  images: [load.images, 'images'],
  import: [load.transfer, 'import'],
  info: [load.system, 'info'],
  inspect: [load.inspect, 'inspect'],
  kill: [load.lifecycle, 'kill'],
  load: [load.transfer, 'load'],
  login: [load.login, 'login'],
  logout: [load.login, 'logout'],
  logs: [load.logs, 'logs'],
  pause: [load.lifecycle, 'pause'],
  port: [load.lifecycle, 'port'],
  ps: [load.ps, 'ps'],
  pull: [load.transfer, 'pull'],
  push: [load.transfer, 'push'],
  rename: [load.lifecycle, 'rename'],
  restart: [load.lifecycle, 'restart'],
  rm: [load.lifecycle, 'rm'],
  rmi: [load.images, 'rmi'],
  run: [load.run, 'run'],
  save: [load.transfer, 'save'],
  start: [load.attach, 'start'],
  stats: [load.stats, 'stats'],
  stop: [load.lifecycle, 'stop'],
  tag: [load.images, 'tag'],
  top: [load.lifecycle, 'top'],
  unpause: [load.lifecycle, 'unpause'],
  update: [load.lifecycle, 'update'],
  version: [load.system, 'version'],
  wait: [load.lifecycle, 'wait'],
};

/** Commands that belong to another issue: accepted, with a clear message. */
const NOT_YET: Record<string, string> = {
  buildx: 'berth buildx is not available: berth has no BuildKit',
};

const GLOBAL_FLAGS = [
  { name: 'host', short: 'H', value: true, multiple: true },
  { name: 'config', value: true },
  { name: 'context', short: 'c', value: true },
  { name: 'debug', short: 'D' },
  { name: 'log-level', short: 'l', value: true },
  { name: 'tls' },
  { name: 'tlsverify' },
  { name: 'tlscacert', value: true },
  { name: 'tlscert', value: true },
  { name: 'tlskey', value: true },
  { name: 'version', short: 'v' },
  { name: 'help', short: 'h' },
];

const COMMON = ['run', 'exec', 'ps', 'build', 'pull', 'push', 'images', 'login', 'logout', 'version', 'info'];

async function describe(ref: Ref): Promise<string> {
  const [loader, key] = ref;
  return (await loader())[key]?.description ?? '';
}

async function topHelp(): Promise<string> {
  const line = async (name: string): Promise<string> => {
    const ref = TOP[name];
    const text = ref ? await describe(ref) : 'Build an image from a Dockerfile (not available yet)';
    return `  ${name.padEnd(11)} ${text}\n`;
  };
  let text =
    "Usage:  berth [OPTIONS] COMMAND\n\nA container engine for Linux with Docker's commands\n\nCommon Commands:\n";
  for (const name of COMMON) text += await line(name);
  text += '\nManagement Commands:\n';
  for (const [name, group] of Object.entries(GROUPS)) text += `  ${name.padEnd(11)} ${group.description}\n`;
  text += '\nCommands:\n';
  for (const name of Object.keys(TOP).sort()) if (!COMMON.includes(name)) text += await line(name);
  text +=
    '\nGlobal Options:\n' +
    '      --config string      Location of client config files (default "~/.docker")\n' +
    '  -D, --debug              Enable debug mode\n' +
    '  -H, --host string        Daemon socket to connect to (default unix:///run/berth/berth.sock;\n' +
    '                           also BERTH_HOST or DOCKER_HOST)\n' +
    '      --tls                Use TLS; implied by --tlsverify\n' +
    '      --tlscacert string   Trust certs signed only by this CA\n' +
    '      --tlscert string     Path to TLS certificate file\n' +
    '      --tlskey string      Path to TLS key file\n' +
    '      --tlsverify          Use TLS and verify the remote\n' +
    '  -v, --version            Print version information and quit\n' +
    "\nRun 'berth COMMAND --help' for more information on a command.\n";
  return text;
}

async function groupHelp(name: string): Promise<string> {
  const group = GROUPS[name];
  if (!group) return '';
  let text = `Usage:  berth ${name} COMMAND\n\n${group.description}\n\nCommands:\n`;
  const seen = new Set<string>();
  for (const [sub, ref] of Object.entries(group.commands)) {
    const key = ref[1];
    if (seen.has(key)) continue;
    seen.add(key);
    text += `  ${sub.padEnd(11)} ${await describe(ref)}\n`;
  }
  return text + `\nRun 'berth ${name} COMMAND --help' for more information on a command.\n`;
}

/** The process's streams, each created on first use: an unused process.stdin alone costs ~10 ms. */
function processStreams(): Streams {
  return {
    get stdin() {
      return process.stdin;
    },
    get stdout() {
      return process.stdout;
    },
    get stderr() {
      return process.stderr;
    },
  };
}

/** Entry point of the berth command line; returns the process exit code. */
export async function main(
  argv: string[],
  streams: Streams = processStreams(),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const write = (text: string): boolean => streams.stderr.write(text);
  let global;
  try {
    global = parseArgs(argv, GLOBAL_FLAGS, { stopAtPositional: true });
  } catch (err) {
    write(`${(err as Error).message}\nSee 'berth --help'.\n`);
    return 125;
  }
  if (flagBool(global, 'version')) {
    streams.stdout.write(`berth version ${BERTH_VERSION}\n`);
    return 0;
  }
  const context = flagValue(global, 'context');
  if (context !== undefined && context !== 'default') {
    write(`berth has no contexts: use -H or BERTH_HOST instead of --context ${context}\n`);
    return 1;
  }
  const ctx = new CliContext(streams, env, {
    hosts: flagValues(global, 'host'),
    configDir: flagValue(global, 'config'),
    tls: flagBool(global, 'tls'),
    tlsVerify: flagBool(global, 'tlsverify'),
    tlsCaCert: flagValue(global, 'tlscacert'),
    tlsCert: flagValue(global, 'tlscert'),
    tlsKey: flagValue(global, 'tlskey'),
    debug: flagBool(global, 'debug'),
  });
  try {
    return await dispatch(ctx, global.positional, flagBool(global, 'help'));
  } finally {
    ctx.close();
  }
}

async function dispatch(ctx: CliContext, words: string[], help: boolean): Promise<number> {
  const [first, second, ...rest] = words;
  if (first === undefined || first === 'help' || (help && words.length === 0)) {
    ctx.out(await topHelp());
    return 0;
  }
  if (first in NOT_YET) {
    ctx.err(`${NOT_YET[first]}\n`);
    return 1;
  }
  let ref: Ref | undefined;
  let name: string;
  let argv: string[];
  const group = GROUPS[first];
  if (group) {
    if (second === undefined || second === '--help' || second === '-h' || help) {
      ctx.out(await groupHelp(first));
      return 0;
    }
    ref = group.commands[second];
    name = `berth ${first} ${second}`;
    argv = rest;
    if (!ref) {
      ctx.err(
        `berth: unknown command: berth ${first} ${second}\n\nUsage:  berth ${first} COMMAND\n\n` +
          `Run 'berth ${first} --help' for more information\n`,
      );
      return 1;
    }
  } else {
    ref = TOP[first];
    name = `berth ${first}`;
    argv = second === undefined ? [] : [second, ...rest];
    if (!ref) {
      ctx.err(`berth: unknown command: berth ${first}\n\nRun 'berth --help' for more information\n`);
      return 1;
    }
  }
  const def = (await ref[0]())[ref[1]];
  if (!def) throw new Error(`command ${ref[1]} is missing from its module`);
  const invocation: Invocation = { name, exit125: ref[0] === load.run };
  if (help) argv = ['--help'];
  return runCommand(ctx, def, argv, invocation);
}

async function runCommand(
  ctx: CliContext,
  def: CommandDef,
  argv: string[],
  invocation: Invocation,
): Promise<number> {
  try {
    const { args, help } = parseCommand(def, argv, invocation);
    if (help) {
      ctx.out(helpText(def, invocation.name));
      return 0;
    }
    return (await def.run(ctx, args, invocation)) ?? 0;
  } catch (err) {
    return report(ctx, err, invocation);
  }
}

/** Prints an error the way the docker CLI does and returns the exit code. */
export function report(ctx: CliContext, err: unknown, invocation: Invocation): number {
  if (err instanceof UsageError) {
    ctx.err(`${err.prefixed ? 'berth: ' : ''}${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof StatusError) {
    if (err.message !== '') ctx.err(`${err.message}\n`);
    return err.exitCode;
  }
  const message =
    err instanceof ApiError ||
    err instanceof ConnectError ||
    err instanceof CommandError ||
    err instanceof BerthError
      ? err.message
      : err instanceof Error
        ? err.message
        : String(err);
  if (invocation.exit125) {
    ctx.err(`berth: ${message}\n\nRun '${invocation.name} --help' for more information\n`);
    return 125;
  }
  ctx.err(`${message}\n`);
  return 1;
}
