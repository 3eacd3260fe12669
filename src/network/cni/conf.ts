/**
 * Network configuration files: `.conflist` lists and single-plugin `.conf`/`.json` files (wrapped
 * into a list of one, as libcni does), validated so that a bad file fails with its name and the
 * offending field rather than later inside a plugin.
 */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { errnoCode, invalidArgument } from '../../common/errors.js';
import type { CniNetworkList, CniPluginConf } from './types.js';
import { isSupportedVersion, SUPPORTED_CNI_VERSIONS } from './version.js';

/** The spec's rule for network names (and container IDs): safe in file names and chain names. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function parseJsonObject(text: string, where: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`${where}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isObject(value)) throw invalidArgument(`${where}: must be a JSON object`);
  return value;
}

function checkName(value: unknown, where: string): string {
  if (value === undefined || value === '') throw invalidArgument(`${where}: "name" is missing`);
  if (typeof value !== 'string' || !NAME_PATTERN.test(value))
    throw invalidArgument(
      `${where}: "name" ${JSON.stringify(value)} must start with a letter or digit followed by letters, digits, "_", "." or "-"`,
    );
  return value;
}

function checkVersion(value: unknown, where: string): string {
  if (value === undefined || value === '') throw invalidArgument(`${where}: "cniVersion" is missing`);
  if (typeof value !== 'string' || !isSupportedVersion(value))
    throw invalidArgument(
      `${where}: "cniVersion" ${JSON.stringify(value)} is not supported; use one of ${SUPPORTED_CNI_VERSIONS.join(', ')}`,
    );
  return value;
}

/** A plugin type is an executable's file name, never a path. */
export function checkPluginType(value: unknown, where: string): string {
  if (value === undefined || value === '') throw invalidArgument(`${where}: "type" is missing`);
  if (typeof value !== 'string' || value === '.' || value === '..' || /[/\0]/.test(value))
    throw invalidArgument(`${where}: "type" ${JSON.stringify(value)} is not a plugin file name`);
  return value;
}

function checkPlugin(value: unknown, where: string): CniPluginConf {
  if (!isObject(value)) throw invalidArgument(`${where}: must be a JSON object`);
  const type = checkPluginType(value.type, where);
  const capabilities = value.capabilities;
  if (capabilities !== undefined) {
    if (!isObject(capabilities) || Object.values(capabilities).some((v) => typeof v !== 'boolean'))
      throw invalidArgument(`${where}: "capabilities" must map capability names to true or false`);
  }
  return { ...value, type };
}

function checkDisableCheck(value: unknown, where: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw invalidArgument(`${where}: "disableCheck" must be true or false`);
}

/** Parse a network configuration list (`.conflist`). */
export function parseConfList(text: string, source = 'CNI network configuration list'): CniNetworkList {
  return checkNetworkList(parseJsonObject(text, source), source);
}

/**
 * Validate a network list, parsed or built in code: the client checks every list it is given,
 * because the name ends up in a cache file name.
 */
export function checkNetworkList(value: unknown, source = 'CNI network configuration list'): CniNetworkList {
  if (!isObject(value)) throw invalidArgument(`${source}: must be a JSON object`);
  const name = checkName(value.name, source);
  const where = `${source} (network "${name}")`;
  const cniVersion = checkVersion(value.cniVersion, where);
  if (value.plugins === undefined) throw invalidArgument(`${where}: "plugins" is missing`);
  if (!Array.isArray(value.plugins) || value.plugins.length === 0)
    throw invalidArgument(`${where}: "plugins" must be a non-empty list`);
  const plugins = value.plugins.map((plugin: unknown, index) =>
    checkPlugin(plugin, `${where} plugins[${index}]`),
  );
  const disableCheck = checkDisableCheck(value.disableCheck, where);
  return { cniVersion, name, plugins, ...(disableCheck === undefined ? {} : { disableCheck }) };
}

/** Parse a single-plugin configuration (`.conf`, `.json`) as a list of one. */
export function parseConf(text: string, source = 'CNI network configuration'): CniNetworkList {
  const raw = parseJsonObject(text, source);
  const name = checkName(raw.name, source);
  const where = `${source} (network "${name}")`;
  const cniVersion = checkVersion(raw.cniVersion, where);
  if (raw.type === undefined && raw.plugins !== undefined)
    throw invalidArgument(
      `${where}: has a "plugins" list; a network configuration list belongs in a .conflist file`,
    );
  // name and cniVersion are set per invocation from the list, so the plugin entry drops them.
  const { name: _name, cniVersion: _version, ...plugin } = raw;
  return { cniVersion, name, plugins: [checkPlugin(plugin, where)] };
}

const LIST_EXTENSIONS = new Set(['.conflist']);
const SINGLE_EXTENSIONS = new Set(['.conf', '.json']);

/**
 * Every network configuration in a directory, in file name order (the order libcni and the
 * runtimes built on it use to pick a default network). A missing directory holds no networks.
 */
export async function loadConfDir(dir: string): Promise<CniNetworkList[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const files = entries
    .filter((entry) => !entry.isDirectory())
    .map((entry) => entry.name)
    .filter((name) => LIST_EXTENSIONS.has(extname(name)) || SINGLE_EXTENSIONS.has(extname(name)))
    .sort();
  const lists: CniNetworkList[] = [];
  for (const file of files) {
    const path = join(dir, file);
    const text = await readFile(path, 'utf8');
    lists.push(LIST_EXTENSIONS.has(extname(file)) ? parseConfList(text, path) : parseConf(text, path));
  }
  return lists;
}
