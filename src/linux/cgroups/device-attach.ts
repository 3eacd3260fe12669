/**
 * Attaching a device program to a v2 cgroup needs the bpf(2) syscall, which Node.js cannot make:
 * `berth-shim cgroup-device-attach <dir>` does it with the program bytes on its stdin.
 */
import { spawn } from 'node:child_process';
import { errnoCode, internal, unavailable } from '../../common/errors.js';

/** Attaches program bytes to a cgroup directory, replacing the device programs attached before. */
export type DeviceProgramAttacher = (cgroupDirectory: string, program: Buffer) => Promise<void>;

const TIMEOUT_MS = 30_000;

export function shimDeviceAttacher(shimPath: string): DeviceProgramAttacher {
  return (cgroupDirectory, program) =>
    new Promise((resolve, reject) => {
      const child = spawn(shimPath, ['cgroup-device-attach', cgroupDirectory], {
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      // Our own timer, not spawn's: that one outlives a program that failed to start.
      const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        if (stderr.length < 65536) stderr += chunk;
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(
          errnoCode(err) === 'ENOENT'
            ? unavailable(
                `linux.resources.devices: ${shimPath} not found; it attaches the cgroup v2 device program`,
              )
            : internal(`running ${shimPath} cgroup-device-attach failed: ${err.message}`, err),
        );
      });
      // A shim that died before reading everything makes stdin fail with EPIPE; its exit reports why.
      child.stdin.on('error', () => undefined);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else
          reject(
            internal(
              `linux.resources.devices: attaching the device program to ${cgroupDirectory} failed ` +
                `(${signal ?? `exit ${code}`}): ${stderr.trim()}`,
            ),
          );
      });
      child.stdin.end(program);
    });
}
