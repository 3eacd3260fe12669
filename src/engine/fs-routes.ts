/** The Docker Engine API routes on a container's filesystem: archive (cp), export, changes (diff), commit. */
import type { RequestContext } from '../api/context.js';
import type { Router } from '../api/router.js';
import { Reply } from '../api/router.js';
import { invalidArgument } from '../common/errors.js';
import { commitContainer } from './commit-container.js';
import { ContainerFs, encodePathStat } from './container-fs.js';
import type { ContainerConfig } from './docker-types.js';
import type { Engine } from './engine.js';

const STAT_HEADER = 'X-Docker-Container-Path-Stat';

function pathParam(ctx: RequestContext<{ id: string }>): string {
  const path = ctx.query.string('path');
  if (path === undefined || path === '') throw invalidArgument('path cannot be empty');
  // Linux's limits (PATH_MAX, NAME_MAX), checked here so a client learns which rule it broke.
  if (Buffer.byteLength(path) >= 4096) throw invalidArgument('path is too long');
  if (path.split('/').some((part) => Buffer.byteLength(part) > 255))
    throw invalidArgument('path has a file name longer than 255 bytes');
  return path;
}

/** Copy a tar stream to the response; stops when the client goes away. */
async function sendTar(ctx: RequestContext<{ id: string }>, tar: AsyncIterable<Buffer>): Promise<void> {
  const stream = ctx.stream('application/x-tar');
  for await (const chunk of tar) if (!(await stream.write(chunk))) break;
  stream.end();
}

export function registerContainerFsRoutes(router: Router, engine: Engine): void {
  const fs = new ContainerFs(engine);

  // Registered before GET, which would otherwise answer HEAD with a whole archive.
  router.head('/containers/{id}/archive', async (ctx) => {
    const stat = await fs.stat(ctx.params.id, pathParam(ctx));
    return new Reply(200, undefined, { [STAT_HEADER]: encodePathStat(stat) });
  });

  router.get('/containers/{id}/archive', async (ctx) => {
    await fs.archive(ctx.params.id, pathParam(ctx), async (stat, tar) => {
      ctx.setHeader(STAT_HEADER, encodePathStat(stat));
      await sendTar(ctx, tar);
    });
  });

  router.put('/containers/{id}/archive', async (ctx) => {
    await fs.extract(ctx.params.id, pathParam(ctx), ctx.bodyStream(), {
      noOverwriteDirNonDir: ctx.query.bool('noOverwriteDirNonDir'),
      copyUIDGID: ctx.query.bool('copyUIDGID'),
    });
    return Reply.empty(200);
  });

  router.get('/containers/{id}/export', async (ctx) => {
    await fs.export(ctx.params.id, (tar) => sendTar(ctx, tar));
  });

  router.get('/containers/{id}/changes', async (ctx) => fs.changes(ctx.params.id));

  router.post('/commit', async (ctx) => {
    const container = ctx.query.string('container');
    if (!container) throw invalidArgument('container is required');
    const config = await ctx.json<ContainerConfig | null>();
    const result = await commitContainer(engine, {
      container,
      repo: ctx.query.string('repo'),
      tag: ctx.query.string('tag'),
      comment: ctx.query.string('comment'),
      author: ctx.query.string('author'),
      pause: ctx.query.bool('pause', true),
      changes: ctx.query.strings('changes'),
      ...(config ? { config } : {}),
    });
    return Reply.json(201, result);
  });
}
