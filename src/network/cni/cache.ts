/**
 * The result cache: the result of the last ADD per (network, container, interface), needed as
 * prevResult for CHECK and DEL. Same location and record shape as libcni
 * (`<cacheDir>/results/<network>-<containerId>-<ifName>`, kind "cniCacheV1"), so tools built on
 * libcni can read what berth wrote and the other way round.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../common/atomic-file.js';
import { errnoCode } from '../../common/errors.js';
import { encodeResult, parseResult } from './result.js';
import type { CniNetworkList, CniResult, CniRuntimeConf } from './types.js';

const KIND = 'cniCacheV1';

/** Network names, container IDs and interface names are validated, so the name is a plain file name. */
export const cachePath = (cacheDir: string, network: string, rt: CniRuntimeConf): string =>
  join(cacheDir, 'results', `${network}-${rt.containerId}-${rt.ifName}`);

export async function writeCachedResult(
  cacheDir: string,
  net: CniNetworkList,
  rt: CniRuntimeConf,
  result: CniResult,
): Promise<void> {
  const record = {
    kind: KIND,
    containerId: rt.containerId,
    // libcni stores the configuration as Go []byte, which JSON encodes as base64.
    config: Buffer.from(JSON.stringify(net)).toString('base64'),
    ifName: rt.ifName,
    networkName: net.name,
    netns: rt.netns,
    ...(rt.args === undefined || rt.args.length === 0 ? {} : { cniArgs: rt.args }),
    ...(rt.capabilityArgs === undefined ? {} : { capabilityArgs: rt.capabilityArgs }),
    result: encodeResult(result, net.cniVersion),
  };
  // 0600: configurations may carry credentials (libcni uses the same mode).
  await writeJsonAtomic(cachePath(cacheDir, net.name, rt), record, { mode: 0o600 });
}

/** The cached result, undefined when there is none; throws when the record is unreadable. */
export async function readCachedResult(
  cacheDir: string,
  network: string,
  rt: CniRuntimeConf,
): Promise<CniResult | undefined> {
  const path = cachePath(cacheDir, network, rt);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON`, { cause: err });
  }
  const fields = (typeof record === 'object' && record !== null ? record : {}) as Record<string, unknown>;
  if (fields.kind !== KIND) throw new Error(`${path} is not a ${KIND} record`);
  if (fields.result === undefined) return undefined;
  try {
    return parseResult(fields.result);
  } catch (err) {
    throw new Error(`${path} holds a malformed result: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
}

export async function removeCachedResult(
  cacheDir: string,
  network: string,
  rt: CniRuntimeConf,
): Promise<void> {
  await rm(cachePath(cacheDir, network, rt), { force: true });
}
