/**
 * berthd's command line, parsed the way dockerd's (pflag) is: `--name value`, `--name=value`,
 * `-H value`, `-Hvalue`, booleans as `--debug` or `--debug=false`, repeatable list flags. Flags that
 * carry a directive are collected by its daemon.json key so the file can be checked against them.
 */
import { invalidArgument } from '../common/errors.js';
import { DEFAULT_CONFIG_FILE, DIRECTIVES, type FlagValues } from './config.js';

export interface CommandLine {
  flags: FlagValues;
  configFile: string;
  /** True when --config-file was given: then a missing file is an error. */
  configFileExplicit: boolean;
  /** Allow TCP listeners without TLS client verification (loudly). */
  insecureTcpForce: boolean;
  /** Check the configuration and exit. */
  validate: boolean;
  help: boolean;
  version: boolean;
}

type Meta = 'config-file' | 'insecure-tcp-force' | 'validate' | 'help' | 'version';

interface Spec {
  name: string;
  short?: string;
  kind: 'bool' | 'value' | 'list';
  /** The directive key, or the meta flag. */
  target: { directive: string } | { meta: Meta };
}

const SPECS: Spec[] = [
  ...DIRECTIVES.flatMap((d) =>
    d.flag === undefined
      ? []
      : [{ name: d.flag.name, short: d.flag.short, kind: d.flag.kind, target: { directive: d.key } }],
  ),
  { name: 'config-file', kind: 'value', target: { meta: 'config-file' } },
  { name: 'insecure-tcp-force', kind: 'bool', target: { meta: 'insecure-tcp-force' } },
  { name: 'validate', kind: 'bool', target: { meta: 'validate' } },
  { name: 'help', short: 'h', kind: 'bool', target: { meta: 'help' } },
  { name: 'version', short: 'v', kind: 'bool', target: { meta: 'version' } },
];

const DESCRIPTIONS: Record<string, string> = {
  'add-runtime': 'Register an OCI runtime (name=path)',
  bip: 'IPv4 address and prefix of the default bridge',
  bridge: 'Name of the default bridge device (default berth0)',
  'cni-config-dir': 'Folder of CNI network configuration lists (default /etc/berth/cni/net.d)',
  'config-file': `Daemon configuration file (default ${DEFAULT_CONFIG_FILE})`,
  'data-root': 'Root directory of persistent state (default /var/lib/berth)',
  debug: 'Enable debug mode',
  'default-address-pool': 'Default address pool for networks (base=CIDR,size=N)',
  'default-runtime': 'Default OCI runtime for containers (default berth)',
  'default-ulimit': 'Default ulimit for containers (name=soft[:hard])',
  'exec-root': 'Root directory of runtime state (default /run/berth)',
  group: 'Group owning the unix socket (default berth, if it exists)',
  help: 'Print usage',
  host: 'Address to listen on: unix://path, tcp://host:port, fd://[name] (repeatable)',
  mtu: 'MTU of the default bridge network (default 1500)',
  'insecure-registry': 'Registry reached over plain HTTP or unverified TLS (repeatable)',
  'insecure-tcp-force':
    'Allow a tcp:// listener without TLS client verification (anyone reaching it is root)',
  'live-restore': 'Keep containers running while the daemon is down',
  'log-driver': 'Default container log driver (default json-file)',
  'log-level': 'Log level: debug, info, warn, error, fatal (default info)',
  'log-opt': 'Default log driver option (key=value, repeatable)',
  'metrics-addr': 'host:port of the Prometheus /metrics listener',
  'registry-mirror': 'Mirror of Docker Hub (repeatable)',
  tls: 'Use TLS on tcp:// listeners (implied by --tlsverify)',
  tlscacert: 'CA certificates that client certificates must chain to',
  tlscert: 'TLS certificate of the daemon',
  tlskey: 'TLS key of the daemon',
  tlsverify: 'Require client certificates signed by --tlscacert on tcp:// listeners',
  'userns-remap': 'User (and group) for user-namespace remapping, or "default"',
  init: 'Run an init inside every container to forward signals and reap processes',
  'init-path': 'Path to the init binary (default berth-init)',
  validate: 'Check the configuration and exit',
  version: 'Print version information and exit',
};

export function usage(): string {
  const lines = SPECS.map((spec) => {
    const names = `${spec.short ? `-${spec.short}, ` : '    '}--${spec.name}${spec.kind === 'bool' ? '' : ' value'}`;
    return `  ${names.padEnd(32)} ${DESCRIPTIONS[spec.name] ?? ''}`;
  }).sort((a, b) => a.trim().replace(/^-., /, '').localeCompare(b.trim().replace(/^-., /, '')));
  return `Usage:  berthd [OPTIONS]\n\nThe berth daemon: serves the Docker Engine API.\n\nOptions:\n${lines.join('\n')}\n`;
}

export function parseCommandLine(args: string[]): CommandLine {
  const byName = new Map<string, Spec>();
  for (const spec of SPECS) {
    byName.set(`--${spec.name}`, spec);
    if (spec.short !== undefined) byName.set(`-${spec.short}`, spec);
  }
  const result: CommandLine = {
    flags: new Map(),
    configFile: DEFAULT_CONFIG_FILE,
    configFileExplicit: false,
    insecureTcpForce: false,
    validate: false,
    help: false,
    version: false,
  };
  const store = (spec: Spec, value: string): void => {
    const target = spec.target;
    if ('directive' in target) {
      const list = spec.kind === 'list' ? (result.flags.get(target.directive) ?? []) : [];
      result.flags.set(target.directive, [...list, value]);
      return;
    }
    switch (target.meta) {
      case 'config-file':
        result.configFile = value;
        result.configFileExplicit = true;
        break;
      case 'insecure-tcp-force':
        result.insecureTcpForce = value === 'true';
        break;
      case 'validate':
        result.validate = value === 'true';
        break;
      case 'help':
        result.help = value === 'true';
        break;
      case 'version':
        result.version = value === 'true';
        break;
    }
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (!arg.startsWith('-') || arg === '-' || arg === '--') {
      throw invalidArgument(`berthd takes no arguments, got ${JSON.stringify(arg)}`);
    }
    const long = arg.startsWith('--');
    const eq = long ? arg.indexOf('=') : -1;
    // Short flags take their value attached (-Hunix:///x) or as the next argument.
    const name = long ? (eq < 0 ? arg : arg.slice(0, eq)) : arg.slice(0, 2);
    const attached = long
      ? eq < 0
        ? undefined
        : arg.slice(eq + 1)
      : arg.length > 2
        ? arg.slice(2)
        : undefined;
    const spec = byName.get(name);
    if (spec === undefined) {
      throw invalidArgument(long ? `unknown flag: ${name}` : `unknown shorthand flag: '${arg[1]}' in ${arg}`);
    }
    if (spec.kind === 'bool') {
      const value = attached ?? 'true';
      if (!long && attached !== undefined)
        throw invalidArgument(`flag -${spec.short} takes no value (in ${arg})`);
      if (value !== 'true' && value !== 'false') {
        throw invalidArgument(
          `invalid argument ${JSON.stringify(value)} for --${spec.name}: expected true or false`,
        );
      }
      store(spec, value);
      continue;
    }
    const value = attached ?? args[++i];
    if (value === undefined) throw invalidArgument(`flag needs an argument: ${name}`);
    store(spec, long || attached === undefined ? value : value.replace(/^=/, ''));
  }
  return result;
}
