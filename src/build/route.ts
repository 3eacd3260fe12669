/**
 * The Engine API's `POST /build` (the classic builder: what `DOCKER_BUILDKIT=0 docker build`
 * and `berth build` call). The body is the context as a tar (plain or compressed); the reply is a
 * JSON message stream: `{"stream": ...}` lines, `{"aux":{"ID":...}}` for the image, and
 * `{"errorDetail":...,"error":...}` when the build fails.
 *
 * Query parameters: t (repeated), dockerfile, q, nocache, pull, rm and forcerm (accepted: build
 * containers are always removed), buildargs and labels (JSON objects), target, networkmode
 * (default/none/host), platform, cgroupparent, cachefrom (ignored), remote (refused: berth only
 * builds from a context it is sent). Secrets for RUN --mount=type=secret come in the
 * X-Berth-Build-Secrets header: base64 of a JSON object id -> base64 value.
 *
 * `POST /build/prune` removes build cache (prune.ts): `all`, `filters`, `keep-storage`,
 * `reserved-space`, `max-used-space`, `min-free-space`; the reply is Docker's
 * `{"CachesDeleted": [...], "SpaceReclaimed": n}`.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Router } from '../api/router.js';
import { JsonMessageWriter } from '../api/streams.js';
import { describeError, invalidArgument } from '../common/errors.js';
import type { ImageService } from '../image/image-service.js';
import { tagName } from '../image/store/names.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { Builder, StepFailedError, type BuildRequest } from './builder.js';
import { BuildCache } from './cache.js';
import { applyDockerignore, readContextDockerfile, unpackContext } from './context.js';
import { parsePruneQuery } from './prune.js';
import type { BuildBridge, RunNetwork } from './run.js';

export const SECRETS_HEADER = 'x-berth-build-secrets';

/** The builder for berthd: its cache and scratch space under the data root, crash leftovers removed. */
export async function openBuilder(options: {
  dataRoot: string;
  images: ImageService;
  snapshotter: Snapshotter;
  runtime: Runtime;
  bridge?: BuildBridge;
  warn?: (message: string) => void;
}): Promise<Builder> {
  const builder = new Builder({
    ...(options.bridge ? { bridge: options.bridge } : {}),
    ...(options.warn ? { warn: options.warn } : {}),
    images: options.images,
    snapshotter: options.snapshotter,
    runtime: options.runtime,
    cache: await BuildCache.open(options.dataRoot),
    tempRoot: join(options.dataRoot, 'build-tmp'),
  });
  await builder.recover();
  return builder;
}

function jsonObject(name: string, text: string | undefined): Record<string, string | null> {
  if (text === undefined || text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`invalid ${name}: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidArgument(`invalid ${name}: expected a JSON object`);
  for (const [key, item] of Object.entries(value))
    if (item !== null && typeof item !== 'string')
      throw invalidArgument(`invalid ${name}: ${key} is not a string`);
  return value as Record<string, string | null>;
}

/** The secrets header: base64(JSON {id: base64 value}). */
export function decodeSecrets(header: string | undefined): Map<string, Buffer> {
  const secrets = new Map<string, Buffer>();
  if (header === undefined || header === '') return secrets;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    throw invalidArgument('invalid X-Berth-Build-Secrets header: not base64 of a JSON object');
  }
  for (const [id, data] of Object.entries(value as Record<string, unknown>)) {
    if (typeof data !== 'string') throw invalidArgument(`invalid secret ${id}: not a base64 string`);
    secrets.set(id, Buffer.from(data, 'base64'));
  }
  return secrets;
}

function networkOf(mode: string | undefined): RunNetwork {
  if (mode === undefined || mode === '' || mode === 'default' || mode === 'bridge') return 'default';
  if (mode === 'none') return 'none';
  if (mode === 'host') return 'host';
  throw invalidArgument(`network mode "${mode}" is not supported for builds: use default, none or host`);
}

/** Register `POST /build` and `POST /build/prune`. */
export function registerBuildRoute(router: Router, builder: Builder, tempRoot: string): void {
  router.post('/build/prune', (ctx) => builder.prune(parsePruneQuery(ctx.query)));

  router.post('/build', async (ctx) => {
    const query = ctx.query;
    const remote = query.string('remote');
    if (remote !== undefined && remote !== '')
      throw invalidArgument(
        `remote build contexts are not supported (remote=${remote}): send the context as the request body`,
      );
    const tags = query.strings('t').filter((t) => t !== '');
    for (const tag of tags) tagName(tag);
    const quiet = query.bool('q');
    const request: Omit<BuildRequest, 'contextDir' | 'dockerfile' | 'output'> = {
      tags,
      buildArgs: jsonObject('buildargs', query.string('buildargs')),
      labels: jsonObject('labels', query.string('labels')) as Record<string, string>,
      noCache: query.bool('nocache'),
      pull: query.bool('pull'),
      network: networkOf(query.string('networkmode')),
      secrets: decodeSecrets(ctx.header(SECRETS_HEADER)),
      signal: ctx.signal,
      ...(query.string('target') ? { target: query.string('target') as string } : {}),
      ...(query.string('platform') ? { platform: query.string('platform') as string } : {}),
      ...(query.string('cgroupparent') ? { cgroupParent: query.string('cgroupparent') as string } : {}),
    };
    const dockerfileName = query.string('dockerfile') || 'Dockerfile';
    const contextDir = join(tempRoot, `context-${randomBytes(8).toString('hex')}`);
    const stream = ctx.stream('application/json');
    const writer = new JsonMessageWriter(stream);
    try {
      await unpackContext(ctx.bodyStream(), contextDir);
      const dockerfile = await readContextDockerfile(contextDir, dockerfileName);
      await applyDockerignore(contextDir);
      const result = await builder.build({
        ...request,
        contextDir,
        dockerfile: dockerfile.text,
        dockerfileName: dockerfile.path,
        output: (text) => {
          if (!quiet) void writer.stream(text);
        },
      });
      await writer.aux({ ID: result.id });
      if (quiet) await writer.stream(`${result.id}\n`);
    } catch (err) {
      const message = describeError(err);
      await writer.send({
        errorDetail: { message, ...(err instanceof StepFailedError ? { code: err.code } : {}) },
        error: message,
      });
    } finally {
      stream.end();
      await rm(contextDir, { recursive: true, force: true });
    }
  });
}
