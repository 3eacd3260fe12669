/**
 * What dockerd refuses at `POST /containers/create` (daemon/container.go verifyContainerSettings)
 * rather than at start: a bad restart policy, resource limits out of range, a `--mount` bind whose
 * source does not exist. Refusing them here gives clients dockerd's 400 and leaves no container.
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { invalidArgument } from '../common/errors.js';
import type { HostConfig, RestartPolicy } from './docker-types.js';
import { containerResources } from './resources.js';

/** Docker 25's ValidateRestartPolicy, with its messages. */
export function checkRestartPolicy(policy: RestartPolicy | null | undefined): void {
  if (!policy) return;
  const name = policy.Name ?? '';
  const retries = policy.MaximumRetryCount ?? 0;
  switch (name) {
    case 'no':
    case 'always':
    case 'unless-stopped':
      if (retries !== 0)
        throw invalidArgument(
          `invalid restart policy: maximum retry count can only be used with 'on-failure'${retries < 0 ? ' and cannot be negative' : ''}`,
        );
      return;
    case 'on-failure':
      if (retries < 0)
        throw invalidArgument('invalid restart policy: maximum retry count cannot be negative');
      return;
    // Engines before Docker 25 wrote an empty name for "no policy".
    case '':
      return;
    default:
      throw invalidArgument(
        `invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`,
      );
  }
}

/** `--mount type=bind` needs an existing source (a `-v` bind creates it; so does CreateMountpoint). */
export function checkBindSources(
  hostConfig: HostConfig,
  exists = (path: string): boolean => pathExists(path),
): void {
  for (const mount of hostConfig.Mounts ?? []) {
    if (mount.Type !== 'bind' || !mount.Source || mount.BindOptions?.CreateMountpoint) continue;
    if (!exists(mount.Source))
      throw invalidArgument(
        `invalid mount config for type "bind": bind source path does not exist: ${mount.Source}`,
      );
  }
}

function pathExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** daemon.json's runtimes as create sees them: `default-runtime` and the names in `runtimes`. */
export interface RuntimeNames {
  defaultRuntime: string;
  configured: string[];
}

export const BUILTIN_RUNTIME = 'berth';

/**
 * The runtime a container is created with (dockerd fills HostConfig.Runtime with the default):
 * an unknown name is dockerd's 400, and a runtime daemon.json names besides berth's own is refused
 * rather than silently replaced, since berthd runs containers with its built-in runtime only.
 */
export function checkRuntime(requested: string | undefined, runtimes: RuntimeNames): string {
  const name = requested || runtimes.defaultRuntime;
  if (name === BUILTIN_RUNTIME) return name;
  if (!runtimes.configured.includes(name)) throw invalidArgument(`Unknown runtime specified ${name}`);
  throw invalidArgument(
    `runtime ${JSON.stringify(name)} is configured (daemon.json runtimes), but berthd runs containers only with its built-in runtime "${BUILTIN_RUNTIME}"`,
  );
}

/** The create-time checks, in dockerd's order. */
export function checkCreateHostConfig(hostConfig: HostConfig | null | undefined, cgroupVersion: 1 | 2): void {
  if (!hostConfig) return;
  checkRestartPolicy(hostConfig.RestartPolicy);
  // The same computation as at start; here only its refusals matter.
  containerResources(hostConfig, {
    cgroupVersion,
    cpuCount: availableParallelism(),
    swapAccounting: true,
    warn: () => undefined,
  });
  checkBindSources(hostConfig);
}
