/**
 * `docker exec`: another process in a running container, with its own shim holding its stdio on
 * an attach socket, so it outlives the client's connection like Docker's.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { conflict, invalidArgument, notFound } from '../common/errors.js';
import type { Process } from '../oci/runtime-spec.js';
import type { Runtime } from '../runtime/runtime.js';
import { attach, type AttachSession } from '../runtime/attach.js';
import { ExecFailedError } from '../runtime/shim-process.js';
import { ALL_CAPABILITIES } from '../linux/capabilities.js';
import { restartingMessage, type ContainerRecord } from './container-record.js';
import type { Engine } from './engine.js';
import { resolveUser } from './user.js';
import { execFailureMessage } from './start-error.js';

export interface ExecConfig {
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Tty?: boolean;
  Env?: string[] | null;
  Cmd?: string[];
  User?: string;
  WorkingDir?: string;
  Privileged?: boolean;
  DetachKeys?: string;
  ConsoleSize?: [number, number] | null;
}

/** The command as dockerd's exec events name it: the program, a space, the arguments. */
const commandLine = (config: ExecConfig): string => {
  const [program = '', ...args] = config.Cmd ?? [];
  return `${program} ${args.join(' ')}`;
};

export interface ExecInstance {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  exitCode: number | null;
  pid: number;
  /** Resolves when the process has ended and its exit code is known. */
  done?: Promise<void>;
}

export class ExecManager {
  private readonly execs = new Map<string, ExecInstance>();

  constructor(
    private readonly engine: Engine,
    private readonly runtime: Runtime,
    private readonly execRoot: string,
  ) {}

  create(containerRef: string, config: ExecConfig): string {
    const record = this.engine.containers.get(containerRef);
    if (!record.state.Running) throw conflict(`Container ${record.id} is not running`);
    if (record.state.Paused)
      throw conflict(`Container ${record.id} is paused, unpause the container before exec`);
    if (record.state.Restarting) throw conflict(restartingMessage(record.id));
    if (!config.Cmd || config.Cmd.length === 0) throw notFound('No exec command specified');
    this.forgetRemoved();
    const id = randomBytes(32).toString('hex');
    this.execs.set(id, { id, containerId: record.id, config, running: false, exitCode: null, pid: 0 });
    this.publish(record, `exec_create: ${commandLine(config)}`, id);
    return id;
  }

  /** dockerd's exec events: container events with the exec's id (and exit code) among the attributes. */
  private publish(
    record: ContainerRecord,
    action: string,
    execID: string,
    extra: Record<string, string> = {},
  ): void {
    this.engine.services.events.publish({
      Type: 'container',
      Action: action,
      Actor: {
        ID: record.id,
        Attributes: {
          ...(record.config.Labels ?? {}),
          execID,
          image: record.imageRef,
          name: record.name,
          ...extra,
        },
      },
    });
  }

  /** Like Docker, a container's exec instances go with it: forget those of removed containers. */
  private forgetRemoved(): void {
    for (const [id, exec] of this.execs)
      if (!exec.running && !this.engine.containers.find(exec.containerId)) this.execs.delete(id);
  }

  get(id: string): ExecInstance {
    const exec = this.execs.get(id);
    if (!exec) throw notFound(`No such exec instance: ${id}`);
    return exec;
  }

  socketPath(id: string): string {
    return join(this.execRoot, 'a', `x${id.slice(0, 15)}`);
  }

  /** Start the process; the session (when attaching) is connected before it runs, so no output is lost. */
  async start(id: string, options: { attach: boolean; tty?: boolean }): Promise<AttachSession | undefined> {
    const exec = this.get(id);
    if (exec.running || exec.exitCode !== null) throw conflict(`Exec command ${id} has already run`);
    const record = this.engine.containers.get(exec.containerId);
    if (!record.state.Running) throw conflict(`Container ${record.id} is not running`);
    if (record.state.Restarting) throw conflict(restartingMessage(record.id));
    const state = await this.runtime.store.load(record.id);
    const base = state.config.process;
    const config = exec.config;
    const user = config.User
      ? await resolveUser(state.rootfs, config.User, record.hostConfig.GroupAdd ?? [])
      : undefined;
    const caps = config.Privileged
      ? { bounding: ALL_CAPABILITIES, effective: ALL_CAPABILITIES, permitted: ALL_CAPABILITIES }
      : base?.capabilities;
    const tty = options.tty ?? config.Tty ?? false;
    const process: Process = {
      terminal: tty,
      ...(config.ConsoleSize
        ? { consoleSize: { height: config.ConsoleSize[0], width: config.ConsoleSize[1] } }
        : {}),
      user: user
        ? { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids }
        : (base?.user ?? { uid: 0, gid: 0 }),
      args: config.Cmd ?? [],
      env: [...(base?.env ?? []), ...(config.Env ?? [])],
      cwd: config.WorkingDir || base?.cwd || '/',
      ...(caps ? { capabilities: caps } : {}),
      ...(base?.rlimits ? { rlimits: base.rlimits } : {}),
      noNewPrivileges: base?.noNewPrivileges ?? false,
    };
    let session: AttachSession | undefined;
    const watcher: { session?: AttachSession } = {};
    const socket = this.socketPath(id);
    let started: { pid: number };
    this.publish(record, `exec_start: ${commandLine(config)}`, id);
    const died = (code: number): void => this.publish(record, 'exec_die', id, { exitCode: String(code) });
    try {
      started = await this.runtime.exec(record.id, process, {
        detach: true,
        stdio: ['ignore', 'ignore', 'ignore'],
        io: { attachSocket: socket, openStdin: config.AttachStdin === true },
        beforeStart: async () => {
          watcher.session = await attach(socket);
          if (options.attach) session = await attach(socket);
        },
      });
    } catch (err) {
      // The program cannot be executed: dockerd's exit code (127 not found, 126 cannot run; the
      // 126 for every failure of older versions was moby#45795) and its message.
      if (err instanceof ExecFailedError) {
        watcher.session?.close();
        session?.close();
        exec.exitCode = err.exitCode;
        exec.done = Promise.resolve();
        died(exec.exitCode);
        throw invalidArgument(execFailureMessage('OCI runtime exec failed: exec failed: ', err));
      }
      throw err;
    }
    const pid = started.pid;
    exec.pid = pid;
    exec.running = true;
    const exitWatch = watcher.session;
    exec.done = (async () => {
      let code: number | undefined;
      if (exitWatch) {
        exitWatch.output.resume();
        code = await exitWatch.exit;
      }
      exec.exitCode = code ?? 126;
      exec.running = false;
      died(exec.exitCode);
    })();
    return session;
  }

  inspect(id: string): object {
    const exec = this.get(id);
    const [entrypoint = '', ...args] = exec.config.Cmd ?? [];
    return {
      ID: exec.id,
      Running: exec.running,
      ExitCode: exec.exitCode,
      ProcessConfig: {
        tty: exec.config.Tty ?? false,
        entrypoint,
        arguments: args,
        privileged: exec.config.Privileged ?? false,
        ...(exec.config.User ? { user: exec.config.User } : {}),
      },
      OpenStdin: exec.config.AttachStdin ?? false,
      OpenStderr: exec.config.AttachStderr ?? false,
      OpenStdout: exec.config.AttachStdout ?? false,
      CanRemove: false,
      ContainerID: exec.containerId,
      DetachKeys: exec.config.DetachKeys ?? '',
      Pid: exec.pid,
    };
  }
}
