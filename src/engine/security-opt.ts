/**
 * `HostConfig.SecurityOpt` (`--security-opt`), parsed like Docker's daemon (parseSecurityOpt),
 * plus `systempaths=unconfined`, which the docker CLI turns into empty MaskedPaths and
 * ReadonlyPaths before sending and other clients may send as it is.
 */
import { invalidArgument } from '../common/errors.js';

export interface SecurityOptions {
  noNewPrivileges: boolean;
  /** `unconfined`, `builtin`, a JSON profile (the docker CLI sends the file's content), or undefined. */
  seccomp?: string;
  /** Recorded, not applied: berth has no AppArmor support. */
  apparmor?: string;
  /** Recorded, not applied: berth has no SELinux support. */
  labels: string[];
  /** `writable-cgroups=true|false`: /sys/fs/cgroup read-write or read-only regardless of --privileged. */
  writableCgroups?: boolean;
  /** `systempaths=unconfined`: no masked and no read-only paths. */
  unconfinedSystemPaths: boolean;
}

/** Go's strconv.ParseBool. */
function parseBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  return undefined;
}

export function parseSecurityOpts(
  options: string[] | null | undefined,
  defaults: { noNewPrivileges?: boolean } = {},
): SecurityOptions {
  const result: SecurityOptions = {
    noNewPrivileges: defaults.noNewPrivileges ?? false,
    labels: [],
    unconfinedSystemPaths: false,
  };
  for (const opt of options ?? []) {
    if (opt === 'no-new-privileges') {
      result.noNewPrivileges = true;
      continue;
    }
    if (opt === 'disable') {
      result.labels.push('disable');
      continue;
    }
    // `key=value`; the `key:value` form is deprecated but still accepted by Docker.
    const separator = opt.includes('=') ? '=' : opt.includes(':') ? ':' : undefined;
    if (separator === undefined) throw invalidArgument(`invalid --security-opt 1: ${JSON.stringify(opt)}`);
    const at = opt.indexOf(separator);
    const key = opt.slice(0, at);
    const value = opt.slice(at + 1);
    const invalid = (): never => {
      throw invalidArgument(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
    };
    switch (key) {
      case 'label':
        result.labels.push(value);
        break;
      case 'apparmor':
        result.apparmor = value;
        break;
      case 'seccomp':
        result.seccomp = value;
        break;
      case 'no-new-privileges':
        result.noNewPrivileges = parseBool(value) ?? invalid();
        break;
      case 'writable-cgroups':
        result.writableCgroups = parseBool(value) ?? invalid();
        break;
      case 'systempaths':
        if (value !== 'unconfined') invalid();
        result.unconfinedSystemPaths = true;
        break;
      default:
        invalid();
    }
  }
  return result;
}
