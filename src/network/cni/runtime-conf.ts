/**
 * Validation of the per-call parameters against the spec's rules, so a bad container ID or
 * interface name fails here with the field named, not inside a plugin or in a cache file name.
 */
import { invalidArgument } from '../../common/errors.js';
import { NAME_PATTERN } from './conf.js';
import type { CniRuntimeConf } from './types.js';

export function checkRuntimeConf(rt: CniRuntimeConf, needsNetns: boolean): void {
  if (!NAME_PATTERN.test(rt.containerId))
    throw invalidArgument(
      `CNI container ID ${JSON.stringify(rt.containerId)} must start with a letter or digit followed by letters, digits, "_", "." or "-"`,
    );
  const ifName = rt.ifName;
  if (ifName === '' || ifName === '.' || ifName === '..' || ifName.length > 15 || /[/:\s]/.test(ifName))
    throw invalidArgument(
      `CNI interface name ${JSON.stringify(ifName)} must be 1 to 15 characters without "/", ":" or white space, and not "." or ".."`,
    );
  if (needsNetns && !rt.netns.startsWith('/'))
    throw invalidArgument(`CNI network namespace ${JSON.stringify(rt.netns)} must be an absolute path`);
  for (const [key, value] of rt.args ?? []) {
    if (key === '' || /[;=]/.test(key) || value.includes(';'))
      throw invalidArgument(
        `CNI argument ${JSON.stringify(`${key}=${value}`)} must have a non-empty key without ";" or "=" and a value without ";"`,
      );
  }
}

/** CNI_ARGS: "K1=V1;K2=V2". */
export const formatCniArgs = (args: [string, string][] | undefined): string =>
  (args ?? []).map(([key, value]) => `${key}=${value}`).join(';');
