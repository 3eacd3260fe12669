/**
 * The classic builder's image history and Env bookkeeping, byte for byte as dockerd writes them:
 * `docker history` output and cache keys of images built elsewhere depend on these strings.
 */
import type { ContainerConfig } from '../oci/image-spec.js';

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** created_by of a metadata step: the current shell, "#(nop) " and the text as separate words. */
export function nopCreatedBy(shell: string[] | undefined, text: string): string {
  return [...(shell ?? DEFAULT_SHELL), '#(nop) ', text].join(' ');
}

/** created_by of WORKDIR, COPY and ADD: dockerd joins "#(nop) " and the text into one word. */
export function nopStringCreatedBy(shell: string[] | undefined, text: string): string {
  return [...(shell ?? DEFAULT_SHELL), `#(nop) ${text}`].join(' ');
}

/**
 * The text of a COPY/ADD step. dockerd names neither --from nor a space after --chown
 * ("COPY --chown=1:1dir:<hash> in /d "); --chmod, which it refuses, is ours.
 */
export function copyHistoryText(
  keyword: string,
  flags: { chown?: string; chmod?: string },
  source: string,
  dest: string,
): string {
  const chown = flags.chown === undefined ? '' : `--chown=${flags.chown}`;
  const chmod = flags.chmod === undefined ? '' : `--chmod=${flags.chmod} `;
  return `${keyword} ${chown}${chmod}${source} in ${dest} `;
}

/** EXPOSE as dockerd records it: the ports sorted as strings. */
export function exposeHistoryText(ports: string[]): string {
  return `EXPOSE ${[...ports].sort().join(' ')}`;
}

/** SHELL as dockerd records it: Go's %v of a string slice, unquoted. */
export function shellHistoryText(shell: string[]): string {
  return `SHELL [${shell.join(' ')}]`;
}

/** Set KEY=value in Env: an existing entry is replaced where it stands, a new one appended. */
export function setEnv(config: ContainerConfig, key: string, value: string): void {
  const env = [...(config.Env ?? [])];
  const index = env.findIndex((entry) => entry === key || entry.startsWith(`${key}=`));
  if (index === -1) env.push(`${key}=${value}`);
  else env[index] = `${key}=${value}`;
  config.Env = env;
}
