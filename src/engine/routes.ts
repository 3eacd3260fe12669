/** The Docker Engine API routes for containers and images, on top of the engine and image service. */
import { Readable, type Writable } from 'node:stream';
import type { AttachSession } from '../runtime/attach.js';
import type { Router } from '../api/router.js';
import { Reply } from '../api/router.js';
import { encodeFrame, JsonMessageWriter, StdStream } from '../api/streams.js';
import { conflict, describeError, invalidArgument } from '../common/errors.js';
import { statsJson, systemCpuUsage, topOf, type StatsSample } from './stats.js';
import type { ImageService } from '../image/image-service.js';
import type { ImageProgress } from '../image/store/progress.js';
import { readJsonLog } from '../runtime/json-log.js';
import type { Engine, WaitCondition } from './engine.js';
import { isLive, restartingMessage, statusText, type ContainerRecord } from './container-record.js';
import type { ExecConfig, ExecManager } from './exec.js';
import { attach } from '../runtime/attach.js';
import { portsSummary } from './container-network.js';
import { checkCreateBody } from './create-body.js';
import { registryClientFor } from './auth-route.js';
import { parseReference } from '../image/reference.js';

const unix = (iso: string | undefined): number => (iso ? Math.floor(Date.parse(iso) / 1000) : 0);
const command = (record: ContainerRecord): string => [record.path, ...record.args].join(' ');

function inspectContainer(engine: Engine, record: ContainerRecord): object {
  const dir = engine.containers.dir(record.id);
  return {
    Id: record.id,
    Created: record.created,
    Path: record.path,
    Args: record.args,
    State: { ...record.state },
    Image: record.image,
    ResolvConfPath: `${dir}/resolv.conf`,
    HostnamePath: `${dir}/hostname`,
    HostsPath: `${dir}/hosts`,
    LogPath: record.logPath,
    Name: `/${record.name}`,
    RestartCount: record.restartCount,
    Driver: 'overlayfs',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: record.hostConfig,
    GraphDriver: { Name: 'overlayfs', Data: null },
    Mounts: Object.entries(record.volumes ?? {}).map(([destination, volume]) => ({
      Type: 'volume',
      Name: volume.name,
      Source: `${engine.volumesRoot}/${volume.name}/_data`,
      Destination: destination,
      Driver: 'local',
      Mode: '',
      RW: !volume.readOnly,
      Propagation: '',
    })),
    Config: { ...record.config, Image: record.imageRef },
    NetworkSettings: engine.networking.settingsJson(record),
  };
}

function summarizeContainer(engine: Engine, record: ContainerRecord): object {
  return {
    Id: record.id,
    Names: [`/${record.name}`],
    Image: record.imageRef,
    ImageID: record.image,
    Command: command(record),
    Created: unix(record.created),
    Ports: portsSummary(record),
    Labels: record.config.Labels ?? {},
    State: record.state.Status,
    Status: statusText(record.state),
    HostConfig: { NetworkMode: record.hostConfig.NetworkMode ?? 'default' },
    NetworkSettings: { Networks: engine.networking.summaryNetworks(record) },
    Mounts: [],
  };
}

function matchesFilters(
  record: ContainerRecord,
  filters: ReturnType<import('../api/query.js').Query['filters']>,
): boolean {
  const any = (key: string, test: (value: string) => boolean): boolean => {
    const values = filters.get(key);
    return values.length === 0 || values.some(test);
  };
  return (
    any('status', (v) => v === record.state.Status) &&
    any('name', (v) => record.name.includes(v.replace(/^\//, ''))) &&
    any('id', (v) => record.id.startsWith(v)) &&
    any(
      'ancestor',
      (v) => record.imageRef === v || record.image.startsWith(v) || record.image === `sha256:${v}`,
    ) &&
    any('exited', (v) => record.state.Status === 'exited' && String(record.state.ExitCode) === v) &&
    any('health', (v) => (record.state.Health?.Status ?? 'none') === v) &&
    any(
      'network',
      (v) =>
        v in (record.networks ?? {}) ||
        Object.values(record.endpoints ?? {}).some(
          (e) => e.networkId === v || (v.length >= 12 && e.networkId.startsWith(v)),
        ),
    ) &&
    any('label', (v) => {
      const [key = '', value] = v.split('=');
      const labels = record.config.Labels ?? {};
      return value === undefined ? key in labels : labels[key] === value;
    })
  );
}

function progressMessage(event: ImageProgress): {
  status: string;
  id?: string;
  progressDetail?: { current: number; total: number };
} {
  return {
    status: event.status,
    ...(event.id ? { id: event.id } : {}),
    ...(event.progressDetail ? { progressDetail: event.progressDetail } : {}),
  };
}

/**
 * Copy an attach session to a hijacked connection (Docker's frames unless there is a TTY) and the
 * client's input to the session's stdin. The output ends once the session ends and `ended` settles.
 */
function relaySession(
  session: AttachSession,
  connection: { input: Readable; output: Writable },
  options: {
    tty: boolean;
    stdout: boolean;
    stderr: boolean;
    stdin: boolean;
    closeStdinAtEnd: boolean;
    ended: Promise<unknown>;
  },
): void {
  const { input, output } = connection;
  session.output.on('data', (chunk: { stream: 'stdout' | 'stderr'; data: Buffer }) => {
    if (chunk.stream === 'stdout' ? !options.stdout : !options.stderr) return;
    const flowing = output.write(
      options.tty
        ? chunk.data
        : encodeFrame(chunk.stream === 'stdout' ? StdStream.Stdout : StdStream.Stderr, chunk.data),
    );
    // A client that stops reading holds the session back, not berthd's memory: the shim drops a
    // client that falls too far behind.
    if (!flowing) {
      session.output.pause();
      output.once('drain', () => session.output.resume());
    }
  });
  const finish = (): void => void options.ended.then(() => output.end());
  session.output.on('end', finish);
  session.output.on('error', finish);
  if (options.stdin) {
    input.on('data', (data: Buffer) => void session.write(data).catch(() => undefined));
    input.on('end', () => {
      if (options.closeStdinAtEnd) void session.closeStdin().catch(() => undefined);
    });
  } else {
    input.resume();
  }
  output.on('close', () => session.close());
  input.on('error', () => session.close());
}

export function registerContainerRoutes(router: Router, engine: Engine): void {
  router.post('/containers/create', async (ctx) => {
    const body = checkCreateBody(await ctx.json<unknown>());
    return Reply.json(201, await engine.create(body, ctx.query.string('name') || undefined));
  });

  router.get('/containers/json', (ctx) => {
    const all = ctx.query.bool('all');
    const filters = ctx.query.filters([
      'status',
      'name',
      'id',
      'ancestor',
      'exited',
      'label',
      'before',
      'since',
      'network',
      'volume',
      'health',
      'is-task',
      'publish',
      'expose',
    ]);
    let list = engine.containers
      .list()
      .filter(
        (c) => (all || c.state.Running || filters.get('status').length > 0) && matchesFilters(c, filters),
      );
    const limit = ctx.query.int('limit');
    if (limit !== undefined && limit > 0) list = list.slice(0, limit);
    return list.map((record) => summarizeContainer(engine, record));
  });

  router.get('/containers/{id}/json', (ctx) =>
    inspectContainer(engine, engine.containers.get(ctx.params.id)),
  );

  router.post('/containers/{id}/start', async (ctx) => {
    const record = engine.containers.get(ctx.params.id);
    if (record.state.Running && !record.state.Paused) return Reply.empty(304);
    await engine.start(ctx.params.id);
    return Reply.empty(204);
  });

  router.post('/containers/{id}/stop', async (ctx) => {
    const stopped = await engine.stop(ctx.params.id, ctx.query.int('t'), ctx.query.string('signal'));
    return Reply.empty(stopped ? 204 : 304);
  });

  router.post('/containers/{id}/restart', async (ctx) => {
    await engine.restart(ctx.params.id, ctx.query.int('t'));
    return Reply.empty(204);
  });

  router.post('/containers/{id}/kill', async (ctx) => {
    await engine.kill(ctx.params.id, ctx.query.string('signal') || 'SIGKILL');
    return Reply.empty(204);
  });

  router.post('/containers/{id}/pause', async (ctx) => {
    await engine.pause(ctx.params.id);
    return Reply.empty(204);
  });

  router.post('/containers/{id}/unpause', async (ctx) => {
    await engine.unpause(ctx.params.id);
    return Reply.empty(204);
  });

  router.post('/containers/{id}/update', async (ctx) => {
    const body = (await ctx.json<Parameters<Engine['update']>[1]>()) ?? {};
    return { Warnings: await engine.update(ctx.params.id, body) };
  });

  router.post('/containers/{id}/rename', async (ctx) => {
    const name = ctx.query.string('name');
    if (!name) throw invalidArgument('name cannot be empty');
    await engine.rename(ctx.params.id, name);
    return Reply.empty(204);
  });

  router.post('/containers/prune', async () => {
    const deleted: string[] = [];
    for (const record of engine.containers.list()) {
      if (record.state.Running || record.state.Status === 'restarting') continue;
      await engine.remove(record.id);
      deleted.push(record.id);
    }
    return { ContainersDeleted: deleted.length > 0 ? deleted : null, SpaceReclaimed: 0 };
  });

  router.delete('/containers/{id}', async (ctx) => {
    await engine.remove(ctx.params.id, { force: ctx.query.bool('force'), volumes: ctx.query.bool('v') });
    return Reply.empty(204);
  });

  router.post('/containers/{id}/wait', async (ctx) => {
    const condition = (ctx.query.string('condition') || 'not-running') as WaitCondition;
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) {
      throw invalidArgument(`invalid condition: "${condition}"`);
    }
    const result = engine.wait(ctx.params.id, condition);
    // Docker sends the head at once and the body when the condition is met.
    const stream = ctx.stream('application/json');
    await stream.write(JSON.stringify(await result) + '\n');
    stream.end();
  });

  router.post('/containers/{id}/attach', async (ctx) => {
    const record = engine.containers.get(ctx.params.id);
    const tty = record.config.Tty === true;
    const wantStdin = ctx.query.bool('stdin');
    const wantStdout = ctx.query.bool('stdout');
    const wantStderr = ctx.query.bool('stderr');
    // Hijack at once: the docker CLI starts the container only after its attach is established.
    const { input, output } = ctx.hijack({ multiplexed: !tty });
    let session;
    try {
      session = await engine.attachSession(ctx.params.id);
    } catch (err) {
      if (!tty) output.write(encodeFrame(StdStream.Systemerr, `${describeError(err)}\n`));
      output.end();
      return;
    }
    relaySession(
      session,
      { input, output },
      {
        tty,
        stdout: wantStdout,
        stderr: wantStderr,
        stdin: wantStdin,
        closeStdinAtEnd: record.config.StdinOnce === true || !tty,
        ended: Promise.resolve(),
      },
    );
  });

  router.get('/containers/{id}/top', async (ctx) => {
    const record = engine.containers.get(ctx.params.id);
    if (!record.state.Running) throw conflict(`Container ${record.id} is not running`);
    if (record.state.Restarting) throw conflict(restartingMessage(record.id));
    return topOf(await engine.pids(record.id), ctx.query.string('ps_args') || '-ef');
  });

  router.get('/containers/{id}/stats', async (ctx) => {
    const record = engine.containers.get(ctx.params.id);
    const streaming = ctx.query.bool('stream', true);
    const oneShot = ctx.query.bool('one-shot');
    const sample = async (): Promise<StatsSample | undefined> => {
      if (!isLive(record.state)) return undefined;
      const cgroup = await engine.cgroupStats(record.id).catch(() => undefined);
      return cgroup ? { read: new Date().toISOString(), cgroup, system: await systemCpuUsage() } : undefined;
    };
    const empty = { read: '0001-01-01T00:00:00Z', cgroup: {}, system: 0 };
    let previous = await sample();
    if (!streaming) {
      if (!oneShot && previous) {
        await new Promise((r) => setTimeout(r, 1000));
        const current = (await sample()) ?? empty;
        return statsJson(record.id, record.name, current, previous);
      }
      return statsJson(record.id, record.name, previous ?? empty, undefined);
    }
    const stream = ctx.stream('application/json');
    while (!stream.closed) {
      const current = (await sample()) ?? empty;
      if (!(await stream.write(JSON.stringify(statsJson(record.id, record.name, current, previous)) + '\n')))
        break;
      previous = current;
      if (!record.state.Running) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    stream.end();
  });

  router.post('/containers/{id}/resize', async (ctx) => {
    const record = engine.containers.get(ctx.params.id);
    if (!isLive(record.state)) throw invalidArgument(`Container ${record.id} is not running`);
    const session = await engine.attachSession(ctx.params.id);
    await session.resize(ctx.query.int('h', 24), ctx.query.int('w', 80));
    session.close();
    return Reply.empty(200);
  });

  router.get('/containers/{id}/logs', async (ctx) => {
    const record = engine.containers.get(ctx.params.id);
    const stdout = ctx.query.bool('stdout');
    const stderr = ctx.query.bool('stderr');
    if (!stdout && !stderr) throw invalidArgument('Bad parameters: you must choose at least one stream');
    const tty = record.config.Tty === true;
    const follow = ctx.query.bool('follow');
    const tailText = ctx.query.string('tail');
    const tail = tailText && tailText !== 'all' ? Number(tailText) : undefined;
    const since = ctx.query.string('since');
    const until = ctx.query.string('until');
    const timestamps = ctx.query.bool('timestamps');
    const toDate = (text: string | undefined): Date | undefined =>
      text && text !== '0' ? new Date(Number(text.split('.')[0]) * 1000) : undefined;
    const stream = ctx.stream(
      tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream',
    );
    const exited = follow && record.state.Running ? engine.wait(record.id, 'next-exit') : Promise.resolve();
    try {
      for await (const entry of readJsonLog(record.logPath, {
        follow: follow && record.state.Running,
        ...(tail !== undefined && Number.isFinite(tail) ? { tail } : {}),
        ...(toDate(since) ? { since: toDate(since) } : {}),
        ...(toDate(until) ? { until: toDate(until) } : {}),
        signal: stream.signal,
        exited,
      })) {
        if ((entry.stream === 'stdout' && !stdout) || (entry.stream === 'stderr' && !stderr)) continue;
        const text = timestamps ? `${entry.time} ${entry.log}` : entry.log;
        const ok = await stream.write(
          tty ? text : encodeFrame(entry.stream === 'stderr' ? StdStream.Stderr : StdStream.Stdout, text),
        );
        if (!ok) break;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    stream.end();
  });
}

export function registerImageRoutes(router: Router, images: ImageService, engine: Engine): void {
  router.post('/images/create', async (ctx) => {
    const fromImage = ctx.query.string('fromImage');
    if (!fromImage)
      throw invalidArgument('image import from a source (fromSrc) is not supported yet; use fromImage');
    const tag = ctx.query.string('tag');
    const reference = tag
      ? tag.startsWith('sha256:')
        ? `${fromImage}@${tag}`
        : `${fromImage}:${tag}`
      : fromImage;
    const registry = registryClientFor(
      images.registry,
      parseReference(reference).domain,
      ctx.header('x-registry-auth'),
    );
    const stream = ctx.stream('application/json');
    const writer = new JsonMessageWriter(stream);
    try {
      await images.pull(reference, {
        registry,
        onProgress: (event) => void writer.send(progressMessage(event)),
        signal: stream.signal,
      });
    } catch (err) {
      await writer.error(describeError(err));
    }
    stream.end();
  });

  router.get('/images/json', async () => {
    const list = await images.list();
    return list.map((image) => ({
      Id: image.id,
      ParentId: '',
      RepoTags: image.repoTags,
      RepoDigests: image.repoDigests,
      Created: unix(image.created),
      Size: image.unpackedSize ?? image.size,
      SharedSize: -1,
      Labels: image.labels,
      Containers: -1,
    }));
  });

  router.get('/images/{name:.*}/json', async (ctx) => {
    const image = await images.inspect(ctx.params.name);
    return {
      Id: image.id,
      RepoTags: image.repoTags,
      RepoDigests: image.repoDigests,
      Parent: '',
      Comment: image.comment ?? '',
      Created: image.created ?? '',
      DockerVersion: '',
      Author: image.author ?? '',
      Config: image.imageConfig.config ?? {},
      Architecture: image.architecture,
      Os: image.os,
      Size: image.unpackedSize ?? image.size,
      GraphDriver: { Name: 'overlayfs', Data: null },
      RootFS: { Type: 'layers', Layers: image.diffIds },
      Metadata: { LastTagTime: image.lastTagged ?? '0001-01-01T00:00:00Z' },
    };
  });

  router.get('/images/{name:.*}/history', async (ctx) =>
    (await images.history(ctx.params.name)).map((item) => ({
      Id: item.id,
      Created: item.created ?? 0,
      CreatedBy: item.createdBy,
      Tags: item.tags.length > 0 ? item.tags : null,
      Size: item.size,
      Comment: item.comment,
    })),
  );

  router.post('/images/prune', async (ctx) => {
    const dangling = ctx.query.filters(['dangling', 'label', 'until']).get('dangling');
    const all = dangling.some((v) => v === 'false' || v === '0');
    const { items, gc } = await images.prune({ all });
    return { ImagesDeleted: items.length > 0 ? items : null, SpaceReclaimed: gc.reclaimedBytes ?? 0 };
  });

  router.post('/images/{name:.*}/tag', async (ctx) => {
    const repo = ctx.query.string('repo');
    if (!repo) throw invalidArgument('repository name must have at least one component');
    const tag = ctx.query.string('tag') || 'latest';
    await images.tag(ctx.params.name, `${repo}:${tag}`);
    return Reply.empty(201);
  });

  router.delete('/images/{name:.*}', async (ctx) => {
    const items = await images.remove(ctx.params.name, { force: ctx.query.bool('force') });
    void engine;
    return items;
  });

  router.post('/images/load', async (ctx) => {
    const quiet = ctx.query.bool('quiet');
    const stream = ctx.stream('application/json');
    const writer = new JsonMessageWriter(stream);
    try {
      await images.load(ctx.bodyStream(), {
        onProgress: (event) => {
          if (!quiet || event.status.startsWith('Loaded image')) void writer.stream(`${event.status}\n`);
        },
      });
    } catch (err) {
      await writer.error(describeError(err));
    }
    stream.end();
  });

  const save = async (names: string[], ctx: Parameters<Parameters<Router['get']>[1]>[0]): Promise<void> => {
    const archive = await images.save(names);
    const stream = ctx.stream('application/x-tar');
    for await (const chunk of Readable.from(archive)) {
      if (!(await stream.write(chunk as Buffer))) break;
    }
    stream.end();
  };
  router.get('/images/get', async (ctx) => save(ctx.query.strings('names'), ctx));
  router.get('/images/{name:.*}/get', async (ctx) => save([ctx.params.name], ctx));
}

export function registerExecRoutes(router: Router, execs: ExecManager, engine: Engine): void {
  router.post('/containers/{id}/exec', async (ctx) => {
    const body = await ctx.json<ExecConfig>();
    if (!body) throw invalidArgument('exec configuration is missing');
    return Reply.json(201, { Id: execs.create(ctx.params.id, body) });
  });

  router.get('/exec/{id}/json', (ctx) => execs.inspect(ctx.params.id));

  router.post('/exec/{id}/start', async (ctx) => {
    const body = (await ctx.json<{ Detach?: boolean; Tty?: boolean }>()) ?? {};
    const exec = execs.get(ctx.params.id);
    const tty = body.Tty ?? exec.config.Tty ?? false;
    if (body.Detach) {
      await execs.start(ctx.params.id, { attach: false, tty });
      return Reply.empty(200);
    }
    // What Docker answers with an HTTP error is checked before the connection is taken over.
    if (exec.running || exec.exitCode !== null) throw conflict(`Exec command ${exec.id} has already run`);
    const state = engine.containers.get(exec.containerId).state;
    if (!state.Running) throw conflict(`Container ${exec.containerId} is not running`);
    if (state.Restarting) throw conflict(restartingMessage(exec.containerId));
    // The upgrade head goes out before the process starts: a client that reads the head with a
    // buffered reader (docker-py) would otherwise swallow the first output with it.
    const { input, output } = ctx.hijack({ multiplexed: !tty });
    let session;
    try {
      session = await execs.start(ctx.params.id, { attach: true, tty });
    } catch (err) {
      if (!tty) output.write(encodeFrame(StdStream.Systemerr, `${describeError(err)}\n`));
      output.end();
      return;
    }
    if (!session) {
      output.end();
      return;
    }
    relaySession(
      session,
      { input, output },
      {
        tty,
        stdout: exec.config.AttachStdout !== false,
        stderr: exec.config.AttachStderr !== false,
        stdin: exec.config.AttachStdin === true,
        closeStdinAtEnd: true,
        // The client asks for the exit code as soon as the stream ends: wait until it is known.
        ended: exec.done ?? Promise.resolve(),
      },
    );
  });

  router.post('/exec/{id}/resize', async (ctx) => {
    const exec = execs.get(ctx.params.id);
    if (!exec.running) throw invalidArgument(`exec ${exec.id} is not running`);
    const session = await attach(execs.socketPath(exec.id));
    await session.resize(ctx.query.int('h', 24), ctx.query.int('w', 80));
    session.close();
    return Reply.empty(200);
  });
}
