/**
 * JSON texts that contain the pid of a process the plan creates. The plan is built before that
 * process exists, so the text is cut where the pid goes and the shim joins the pieces with it
 * (docs/shim-plan.md, HOOK and SECCOMP_LISTENER).
 */
import type { ContainerStatus } from '../oci/runtime-spec.js';
import { OCI_RUNTIME_SPEC_VERSION } from '../common/version.js';
import type { PidTemplate } from './plan.js';

/** Where the pid goes in a template value. */
export const PID: unique symbol = Symbol('pid');

type Value = string | number | boolean | null | typeof PID | Value[] | { [key: string]: Value | undefined };

/** JSON.stringify's text for `value` (undefined properties left out), cut at each PID. */
export function pidTemplate(value: Value): PidTemplate {
  const pieces = [''];
  const emit = (text: string): void => {
    pieces[pieces.length - 1] += text;
  };
  const walk = (item: Value): void => {
    if (item === PID) {
      pieces.push('');
    } else if (Array.isArray(item)) {
      emit('[');
      item.forEach((element, index) => {
        if (index > 0) emit(',');
        walk(element);
      });
      emit(']');
    } else if (item !== null && typeof item === 'object') {
      emit('{');
      let first = true;
      for (const [key, element] of Object.entries(item)) {
        if (element === undefined) continue;
        emit(`${first ? '' : ','}${JSON.stringify(key)}:`);
        first = false;
        walk(element);
      }
      emit('}');
    } else {
      emit(JSON.stringify(item));
    }
  };
  walk(value);
  return pieces;
}

/** The parts of the OCI state that are known before the container's init exists. */
export interface StateInfo {
  id: string;
  bundle: string;
  annotations?: Record<string, string>;
}

/** The runtime-spec state of the container; `pid` is the container's init (PID: the one being made). */
function stateValue(info: StateInfo, status: ContainerStatus, pid: number | typeof PID): Value {
  return {
    ociVersion: OCI_RUNTIME_SPEC_VERSION,
    id: info.id,
    status,
    pid,
    bundle: info.bundle,
    annotations: info.annotations,
  };
}

/** The state a createContainer or startContainer hook reads on its stdin (init's pid left to the shim). */
export function hookState(
  info: StateInfo,
  status: Extract<ContainerStatus, 'creating' | 'created'>,
): PidTemplate {
  return pidTemplate(stateValue(info, status, PID));
}

/**
 * The container process state sent to a seccomp listener with the notification fd (runtime-spec
 * config-linux.md, "The Container Process State"): `pid` is the process that loaded the filter;
 * the state's pid is the container's init, which is that process itself at create.
 */
export function containerProcessState(
  info: StateInfo,
  metadata: string | undefined,
  init: { status: 'creating' } | { status: 'running'; pid: number },
): PidTemplate {
  const value: Value = {
    ociVersion: OCI_RUNTIME_SPEC_VERSION,
    fds: ['seccompFd'],
    pid: PID,
    metadata,
    state: stateValue(info, init.status, init.status === 'creating' ? PID : init.pid),
  };
  return pidTemplate(value);
}
