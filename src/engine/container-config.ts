/**
 * The container's Config as Docker's daemon derives it from the create body and the image, and
 * the process fields that follow from it: command line, environment, working directory.
 */
import { posix } from 'node:path';
import { invalidArgument } from '../common/errors.js';
import type { ContainerConfig as ImageContainerConfig } from '../oci/image-spec.js';
import { DEFAULT_PATH_ENV } from '../oci/defaults.js';
import type { ContainerConfig, HealthConfig } from './docker-types.js';

const nonEmpty = <T>(list: T[] | null | undefined): list is T[] =>
  list !== undefined && list !== null && list.length > 0;
const envKey = (entry: string): string => entry.split('=', 1)[0] ?? '';

/**
 * Docker's merge of a create body's Config with the image's config (daemon/create.go): the user's
 * values win; env, labels, exposed ports and volumes are unions; an Entrypoint given by the user
 * drops the image's Cmd; `Entrypoint: [""]` (`--entrypoint ""`) clears the image's entrypoint and
 * Cmd. Idempotent, so the engine can store the merged Config and pass it again: for that reason
 * `[""]` stays in the merged Config (Docker stores `null` there) and processArgs skips it.
 */
export function mergeImageConfig(
  config: ContainerConfig,
  image: ImageContainerConfig | undefined,
): ContainerConfig {
  const merged: ContainerConfig = { ...config };
  const img = image ?? {};
  if (!merged.User) merged.User = img.User ?? '';
  if (img.ExposedPorts) merged.ExposedPorts = { ...img.ExposedPorts, ...(merged.ExposedPorts ?? {}) };
  if (!nonEmpty(merged.Env)) {
    merged.Env = img.Env ? [...img.Env] : (merged.Env ?? null);
  } else {
    const keys = new Set(merged.Env.map(envKey));
    merged.Env = [...merged.Env, ...(img.Env ?? []).filter((entry) => !keys.has(envKey(entry)))];
  }
  merged.Labels = { ...(img.Labels ?? {}), ...(merged.Labels ?? {}) };
  if (!nonEmpty(merged.Entrypoint)) {
    if (!nonEmpty(merged.Cmd)) merged.Cmd = img.Cmd ? [...img.Cmd] : (merged.Cmd ?? null);
    if (merged.Entrypoint === undefined || merged.Entrypoint === null)
      merged.Entrypoint = img.Entrypoint ? [...img.Entrypoint] : null;
  }
  merged.Healthcheck = mergeHealthcheck(merged.Healthcheck ?? undefined, img.Healthcheck);
  if (!merged.WorkingDir) merged.WorkingDir = img.WorkingDir ?? '';
  if (img.Volumes) merged.Volumes = { ...(merged.Volumes ?? {}), ...img.Volumes };
  if (!merged.StopSignal && img.StopSignal) merged.StopSignal = img.StopSignal;
  return merged;
}

function mergeHealthcheck(
  user: HealthConfig | undefined,
  image: HealthConfig | undefined,
): HealthConfig | null {
  if (image === undefined) return user ?? null;
  if (user === undefined) return { ...image };
  const merged: HealthConfig = { ...user };
  if (!nonEmpty(user.Test) && image.Test) merged.Test = [...image.Test];
  for (const key of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
    if (!user[key] && image[key] !== undefined) merged[key] = image[key];
  }
  return merged;
}

/** Entrypoint + Cmd of a merged Config; Docker's "No command specified" when both are empty. */
export function processArgs(config: ContainerConfig): string[] {
  const entrypoint =
    config.Entrypoint?.length === 1 && config.Entrypoint[0] === '' ? [] : (config.Entrypoint ?? []);
  const args = [...entrypoint, ...(config.Cmd ?? [])];
  if (args.length === 0) throw invalidArgument('No command specified');
  return args;
}

/** Docker's ReplaceOrAppendEnvValues: same key replaced in place, new keys appended, a bare `KEY` unsets. */
export function replaceOrAppendEnv(defaults: string[], overrides: string[]): string[] {
  const result: Array<string | undefined> = [...defaults];
  const index = new Map<string, number>();
  result.forEach((entry, i) => index.set(envKey(entry ?? ''), i));
  for (const value of overrides) {
    const at = index.get(envKey(value));
    if (!value.includes('=')) {
      if (at !== undefined) result[at] = undefined;
    } else if (at !== undefined) {
      result[at] = value;
    } else {
      result.push(value);
    }
  }
  return result.filter((entry): entry is string => entry !== undefined);
}

/**
 * The process environment Docker gives a container: PATH, HOSTNAME, TERM (with a tty) and the
 * legacy link variables, overridden by the merged Config's Env.
 */
export function containerEnv(config: ContainerConfig, hostname: string, linkEnv: string[] = []): string[] {
  for (const entry of config.Env ?? []) {
    if (envKey(entry) === '') throw invalidArgument(`invalid environment variable: ${entry}`);
  }
  const defaults = [
    DEFAULT_PATH_ENV,
    `HOSTNAME=${hostname}`,
    ...(config.Tty ? ['TERM=xterm'] : []),
    ...linkEnv,
  ];
  return replaceOrAppendEnv(defaults, config.Env ?? []);
}

/** The working directory: the merged Config's, cleaned, or `/`. */
export function workingDir(config: ContainerConfig): string {
  const dir = config.WorkingDir ?? '';
  if (dir === '') return '/';
  if (!posix.isAbsolute(dir))
    throw invalidArgument(`the working directory '${dir}' is invalid, it needs to be an absolute path`);
  return posix.resolve(dir);
}
