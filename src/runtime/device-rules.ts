import type { DeviceCgroup, Resources, Spec } from '../oci/runtime-spec.js';
import { DEFAULT_DEVICES } from './plan-builder.js';

/**
 * Device cgroup rules every container gets after its own (like runc): mknod of any node (the
 * node is still useless without read/write), the default devices and the pty devices. Devices
 * config.json creates get only what its own rules (linux.resources.devices) allow.
 */
const ALWAYS_ALLOWED: DeviceCgroup[] = [
  { allow: true, type: 'c', major: null, minor: null, access: 'm' },
  { allow: true, type: 'b', major: null, minor: null, access: 'm' },
  { allow: true, type: 'c', major: 136, minor: null, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
];

export function effectiveResources(spec: Spec): Resources | undefined {
  const resources = spec.linux?.resources;
  const devices = [
    ...(resources?.devices ?? []),
    ...ALWAYS_ALLOWED,
    ...DEFAULT_DEVICES.filter((device) => device.type === 'c' || device.type === 'b').map(
      (device): DeviceCgroup => ({
        allow: true,
        type: device.type as 'c' | 'b',
        major: device.major ?? null,
        minor: device.minor ?? null,
        access: 'rwm',
      }),
    ),
  ];
  return { ...resources, devices };
}
