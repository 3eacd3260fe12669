/** The Docker Engine API routes for containers and images, on top of the engine and image service. */
import { hostname } from 'node:os';
import { Readable, type Writable } from 'node:stream';
import type { AttachSession } from '../runtime/attach.js';
import type { Router } from '../api/router.js';
import { Reply } from '../api/router.js';
import { encodeFrame, JsonMessageWriter, StdStream } from '../api/streams.js';
import { BerthError, conflict, describeError, invalidArgument } from '../common/errors.js';
import { networkCounters, statsJson, systemCpuUsage, topOf, type StatsSample } from './stats.js';
import type { ImageService } from '../image/image-service.js';
import type { ImageProgress } from '../image/store/progress.js';
import { readJsonLog } from '../runtime/json-log.js';
import type { Engine, WaitCondition } from './engine.js';
import { isLive, restartingMessage } from './container-record.js';
import type { ExecConfig, ExecManager } from './exec.js';
import { attach } from '../runtime/attach.js';
import { checkCreateBody, checkExecBody } from './create-body.js';
import { checkCreateHostConfig } from './create-checks.js';
import { registryClientFor } from './auth-route.js';
import { familiarName, familiarReference, parseReference } from '../image/reference.js';
import { inspectJson } from './inspect.js';
import {
  CONTAINER_LIST_FILTERS,
  listContext,
  matchesListFilters,
  summarizeContainer,
} from './container-list.js';
import {
  deleteItemJson,
  filterImage,
  IMAGE_LIST_FILTERS,
  imageInspectJson,
  imageSummaryJson,
  parseTimestamp,
  type ImageListBounds,
} from './image-json.js';

const unix = (iso: string | undefined): number => (iso ? Math.floor(Date.parse(iso) / 1000) : 0);

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
    checkCreateHostConfig(body.HostConfig, engine.services.cgroupVersion);
    return Reply.json(201, await engine.create(body, ctx.query.string('name') || undefined));
  });

  router.get('/containers/json', (ctx) => {
    const all = ctx.query.bool('all');
    const filters = ctx.query.filters(CONTAINER_LIST_FILTERS);
    const context = listContext(filters, (ref) => engine.containers.find(ref));
    let list = engine.containers
      .list()
      .filter(
        (c) => (all || c.state.Running || filters.get('status').length > 0) && matchesListFilters(c, context),
      );
    const limit = ctx.query.int('limit');
    if (limit !== undefined && limit > 0) list = list.slice(0, limit);
    return list.map((record) => summarizeContainer(engine, record));
  });

  router.get('/containers/{id}/json', (ctx) => {
    const record = engine.containers.get(ctx.params.id);
    return inspectJson(record, {
      dir: engine.containers.dir(record.id),
      volumesRoot: engine.volumesRoot,
      cgroupVersion: engine.services.cgroupVersion,
      hostHostname: hostname(),
      networkSettings: engine.networking.settingsJson(record),
      apiVersion: ctx.apiVersion,
    });
  });

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
    await engine.rename(ctx.params.id, name).catch((err: unknown) => {
      // dockerd says which step of the rename the name conflict stopped.
      if (err instanceof BerthError && err.kind === 'conflict' && err.message.startsWith('Conflict.'))
        throw conflict(`Error when allocating new name: ${err.message}`);
      throw err;
    });
    return Reply.empty(204);
  });

  router.post('/containers/prune', async () => {
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const record of engine.containers.list()) {
      if (record.state.Running || record.state.Status === 'restarting') continue;
      // Like dockerd: the space is the size of the writable layers removed.
      const size = await engine.services.snapshotter
        .usage(record.snapshotKey)
        .then((usage) => usage.size)
        .catch(() => 0);
      await engine.remove(record.id);
      deleted.push(record.id);
      reclaimed += size;
    }
    return { ContainersDeleted: deleted.length > 0 ? deleted : null, SpaceReclaimed: reclaimed };
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
      if (!cgroup) return undefined;
      const networks = await networkCounters(Object.values(record.endpoints ?? {}));
      return {
        read: new Date().toISOString(),
        cgroup,
        system: await systemCpuUsage(),
        ...(networks ? { networks } : {}),
      };
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
  const imageEvent = (action: string, id: string, name: string): void =>
    void engine.services.events.publish({
      Type: 'image',
      Action: action,
      Actor: { ID: id, Attributes: { name } },
    });
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
      const pulled = parseReference(reference);
      imageEvent('pull', familiarReference(pulled), familiarName(pulled));
    } catch (err) {
      await writer.error(describeError(err));
    }
    stream.end();
  });

  router.get('/images/json', async (ctx) => {
    const filters = ctx.query.filters(IMAGE_LIST_FILTERS);
    const createdOf = async (ref: string): Promise<number> =>
      Math.floor(Date.parse((await images.inspect(ref)).created ?? '') / 1000) || 0;
    const bounds: ImageListBounds = {};
    for (const ref of filters.get('before')) bounds.before = await createdOf(ref);
    for (const ref of filters.get('since')) bounds.since = await createdOf(ref);
    for (const value of filters.get('until')) bounds.until = parseTimestamp(value);
    const list = (await images.list())
      .map((image) => filterImage(image, filters, bounds))
      .filter((image) => image !== undefined)
      .sort((a, b) => unix(b.created) - unix(a.created));
    return list.map((image) => imageSummaryJson(image, ctx.apiVersion));
  });

  router.get('/images/{name:.*}/json', async (ctx) =>
    imageInspectJson(await images.inspect(ctx.params.name), ctx.apiVersion),
  );

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
    return {
      ImagesDeleted: items.length > 0 ? items.map(deleteItemJson) : null,
      SpaceReclaimed: gc.reclaimedBytes ?? 0,
    };
  });

  router.post('/images/{name:.*}/tag', async (ctx) => {
    const repo = ctx.query.string('repo');
    if (!repo) throw invalidArgument('repository name must have at least one component');
    const tag = ctx.query.string('tag') || 'latest';
    await images.tag(ctx.params.name, `${repo}:${tag}`);
    const id = (await images.inspect(ctx.params.name)).id;
    imageEvent('tag', id, familiarReference(parseReference(`${repo}:${tag}`)));
    return Reply.empty(201);
  });

  router.delete('/images/{name:.*}', async (ctx) => {
    const id = (await images.inspect(ctx.params.name)).id;
    const items = await images.remove(ctx.params.name, { force: ctx.query.bool('force') });
    // dockerd names the image by its id in both events.
    for (const item of items) imageEvent('untagged' in item ? 'untag' : 'delete', id, id);
    return items.map(deleteItemJson);
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
    const body = checkExecBody(await ctx.json<unknown>()) as ExecConfig;
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
      // dockerd writes a failed start's error on the stream's stdout (docker exec prints it and
      // exits with the exec's exit code).
      const line = `${describeError(err)}\r\n`;
      output.write(tty ? line : encodeFrame(StdStream.Stdout, line));
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
