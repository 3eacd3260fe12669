/**
 * `--device`, `--device-cgroup-rule`, `--gpus` and `--privileged`: the container's device nodes
 * and device cgroup rules (moby WithDevices, DevicesFromPath, AppendDevicePermissionsFromCgroupRules).
 */
import { posix } from 'node:path';
import { describeError, internal, invalidArgument } from '../common/errors.js';
import type { Device, DeviceCgroup } from '../oci/runtime-spec.js';
import type { DeviceMapping, DeviceRequest } from './docker-types.js';

/** Device lookups on the host (src/engine/host.ts has the real ones). */
export interface DeviceLookups {
  /**
   * The device at a host path (with `path` set to the path asked for), or every device below a
   * directory (with paths below the path asked for); [] when neither; throws when missing.
   */
  statDevice?: (path: string) => Device[];
  /** Every device a privileged container gets. */
  hostDevices?: () => Device[];
}

export interface ContainerDevices {
  devices: Device[];
  cgroupRules: DeviceCgroup[];
}

const RULE = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/;
const PERMISSIONS = /^[rwm]{1,3}$/;

/** Docker's device cgroup rule syntax: `c 1:3 rwm`, `b *:* m`, `a *:* rwm`. */
export function parseDeviceCgroupRule(rule: string): DeviceCgroup {
  const match = RULE.exec(rule);
  if (match === null) throw invalidArgument(`invalid device cgroup rule format: '${rule}'`);
  const number = (text: string | undefined): number | null => (text === '*' ? null : Number(text));
  return {
    allow: true,
    type: match[1] as 'a' | 'c' | 'b',
    major: number(match[2]),
    minor: number(match[3]),
    access: match[4] as string,
  };
}

function need<T>(lookup: T | undefined, what: string): T {
  if (lookup === undefined) throw internal(`buildSpec: ${what} is needed but was not given`);
  return lookup;
}

/** The devices of one mapping: the node itself, or each node below a directory, renamed under PathInContainer. */
function devicesFromPath(mapping: DeviceMapping, statDevice: (path: string) => Device[]): Device[] {
  const hostPath = mapping.PathOnHost;
  if (typeof hostPath !== 'string' || hostPath === '')
    throw invalidArgument(
      'error gathering device information while adding custom device "": no such file or directory',
    );
  const containerPath = mapping.PathInContainer || hostPath;
  if (!posix.isAbsolute(containerPath))
    throw invalidArgument(
      `invalid device mapping ${JSON.stringify(hostPath)}: ${containerPath} is not an absolute path`,
    );
  let found: Device[];
  try {
    found = statDevice(hostPath);
  } catch (err) {
    throw invalidArgument(
      `error gathering device information while adding custom device ${JSON.stringify(hostPath)}: ${describeError(err)}`,
    );
  }
  if (found.length === 0)
    throw invalidArgument(
      `error gathering device information while adding custom device ${JSON.stringify(hostPath)}: not a device node`,
    );
  return found.map((device) => ({
    ...device,
    path:
      device.path === hostPath
        ? containerPath
        : posix.join(containerPath, posix.relative(hostPath, device.path)),
  }));
}

const cgroupRuleOf = (device: Device, access: string): DeviceCgroup => ({
  allow: true,
  type: device.type as 'c' | 'b',
  major: device.major ?? null,
  minor: device.minor ?? null,
  access,
});

export function containerDevices(
  options: {
    privileged: boolean;
    devices: DeviceMapping[] | null | undefined;
    cgroupRules: string[] | null | undefined;
    requests: DeviceRequest[] | null | undefined;
  },
  lookups: DeviceLookups,
): ContainerDevices {
  for (const request of options.requests ?? []) {
    const capabilities = (request.Capabilities ?? []).map((set) => `[${set.join(' ')}]`).join(' ');
    throw invalidArgument(
      `could not select device driver ${JSON.stringify(request.Driver ?? '')} with capabilities: [${capabilities}]`,
    );
  }
  const devices: Device[] = [];
  const cgroupRules: DeviceCgroup[] = [{ allow: false, access: 'rwm' }];
  if (options.privileged) {
    devices.push(...need(lookups.hostDevices, 'hostDevices')());
    for (const mapping of options.devices ?? []) {
      // The host's node is already there under the same path.
      if ((mapping.PathInContainer || mapping.PathOnHost) === mapping.PathOnHost) continue;
      devices.push(...devicesFromPath(mapping, need(lookups.statDevice, 'statDevice')));
    }
    return { devices, cgroupRules: [{ allow: true, access: 'rwm' }] };
  }
  for (const mapping of options.devices ?? []) {
    const access = mapping.CgroupPermissions || 'rwm';
    if (!PERMISSIONS.test(access))
      throw invalidArgument(
        `invalid device mode ${JSON.stringify(access)} for device ${JSON.stringify(mapping.PathOnHost)}`,
      );
    const found = devicesFromPath(mapping, need(lookups.statDevice, 'statDevice'));
    devices.push(...found);
    cgroupRules.push(...found.map((device) => cgroupRuleOf(device, access)));
  }
  cgroupRules.push(...(options.cgroupRules ?? []).map(parseDeviceCgroupRule));
  return { devices, cgroupRules };
}
