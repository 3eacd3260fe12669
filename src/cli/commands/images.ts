/** Local images: images (ls), history, rmi, tag, image prune, commit. */
import { flagBool, flagValue, flagValues } from '../args.js';
import { pathEscape } from '../client.js';
import { FILTER_FLAG, FORCE_PRUNE_FLAG, FORMAT_FLAG, type CommandDef } from '../command.js';
import { loadConfig } from '../config.js';
import { CommandError, isNotFound } from '../errors.js';
import { renderList, structContext } from '../format/formatter.js';
import { ellipsis, goTimeString, humanSize, humanSizeWithPrecision, timeAgo } from '../format/units.js';
import { filtersJson } from '../opts/values.js';
import { familiarName, parseReference, repositoryName, DEFAULT_TAG } from '../../image/reference.js';
import { confirm, shortId } from './common.js';
import { normalizeReference } from './transfer.js';

export interface ImageSummary {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created?: number;
  Size?: number;
  SharedSize?: number;
  Containers?: number;
}

interface Row {
  repo: string;
  tag: string;
  digest: string;
}

/** docker's imageFormatTaggedAndDigest: one row per repository tag (and digest with --digests). */
function rows(image: ImageSummary, showDigests: boolean): Row[] {
  const tags = image.RepoTags ?? [];
  const digests = image.RepoDigests ?? [];
  const dangling =
    (tags.length === 0 && digests.length === 0) ||
    (tags.length === 1 &&
      tags[0] === '<none>:<none>' &&
      digests.length === 1 &&
      digests[0] === '<none>@<none>');
  if (dangling) return [{ repo: '<none>', tag: '<none>', digest: '<none>' }];
  const repoTags = new Map<string, string[]>();
  const repoDigests = new Map<string, string[]>();
  for (const text of tags) {
    try {
      const ref = parseReference(text, { defaultTag: false });
      if (ref.tag === undefined) continue;
      const name = familiarName(ref);
      repoTags.set(name, [...(repoTags.get(name) ?? []), ref.tag]);
    } catch {
      // docker skips references it cannot parse
    }
  }
  for (const text of digests) {
    try {
      const ref = parseReference(text, { defaultTag: false });
      if (ref.digest === undefined) continue;
      const name = familiarName(ref);
      repoDigests.set(name, [...(repoDigests.get(name) ?? []), ref.digest]);
    } catch {
      // as above
    }
  }
  const out: Row[] = [];
  for (const [repo, repoTagList] of repoTags) {
    const repoDigestList = showDigests ? (repoDigests.get(repo) ?? []) : [];
    repoDigests.delete(repo);
    for (const tag of repoTagList) {
      if (repoDigestList.length === 0) out.push({ repo, tag, digest: '<none>' });
      for (const digest of repoDigestList) out.push({ repo, tag, digest });
    }
  }
  for (const [repo, list] of repoDigests) {
    if (showDigests) for (const digest of list) out.push({ repo, tag: '<none>', digest });
    else out.push({ repo, tag: '<none>', digest: '' });
  }
  return out;
}

/** The template contexts of images, one per row as docker lists them. */
export function imageRows(
  images: ImageSummary[],
  digests: boolean,
  trunc: boolean,
  now: number,
): Record<string, unknown>[] {
  return images.flatMap((image) => rows(image, digests).map((row) => imageContext(image, row, trunc, now)));
}

function imageContext(image: ImageSummary, row: Row, trunc: boolean, now: number): Record<string, unknown> {
  const size = image.Size ?? 0;
  const shared = image.SharedSize ?? -1;
  return structContext({
    Containers: (image.Containers ?? -1) === -1 ? 'N/A' : String(image.Containers),
    CreatedAt: goTimeString(image.Created ?? 0),
    CreatedSince: timeAgo(image.Created ?? 0, now),
    Digest: row.digest,
    ID: trunc ? shortId(image.Id) : image.Id,
    Repository: row.repo,
    SharedSize: shared === -1 ? 'N/A' : humanSize(shared),
    Size: humanSizeWithPrecision(size, 3),
    Tag: row.tag,
    UniqueSize: size === -1 || shared === -1 ? 'N/A' : humanSize(size - shared),
    VirtualSize: humanSize(size),
  });
}

const IMAGE_HEADERS: Record<string, string> = {
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  VirtualSize: 'SIZE',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
};

const HISTORY_HEADERS: Record<string, string> = {
  ID: 'IMAGE',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
  Size: 'SIZE',
  Comment: 'COMMENT',
};

interface HistoryEntry {
  Id: string;
  Created: number;
  CreatedBy?: string;
  Size?: number;
  Comment?: string;
}

const rfc3339 = (unixSeconds: number): string =>
  new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

export const commands: Record<string, CommandDef> = {
  images: {
    usage: '[OPTIONS] [REPOSITORY[:TAG]]',
    description: 'List images',
    aliases: ['berth image ls', 'berth image list', 'berth images'],
    args: { max: 1 },
    flags: [
      {
        name: 'all',
        short: 'a',
        type: 'bool',
        description: 'Show all images (default hides intermediate images)',
      },
      { name: 'digests', type: 'bool', description: 'Show digests' },
      FILTER_FLAG,
      FORMAT_FLAG,
      { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
    ],
    run: async (ctx, args) => {
      const filters = flagValues(args, 'filter');
      const reference = args.positional[0];
      if (reference !== undefined) filters.push(`reference=${reference}`);
      let format = flagValue(args, 'format') ?? '';
      if (format === '') {
        const configured = (await loadConfig(ctx.configDir)).imagesFormat;
        if (typeof configured === 'string') format = configured;
      }
      const images =
        (await ctx.client().json<ImageSummary[] | null>('GET', '/images/json', {
          query: { all: flagBool(args, 'all') ? '1' : undefined, filters: filtersJson(filters) },
        })) ?? [];
      const digests = flagBool(args, 'digests');
      const trunc = !flagBool(args, 'no-trunc');
      const now = Date.now();
      const contexts = imageRows(images, digests, trunc, now);
      const defaultTable = digests
        ? 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}'
        : 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
      ctx.out(
        renderList({ format, defaultTable, headers: IMAGE_HEADERS }, contexts, flagBool(args, 'quiet')),
      );
      return 0;
    },
  },
  history: {
    usage: '[OPTIONS] IMAGE',
    description: 'Show the history of an image',
    aliases: ['berth image history', 'berth history'],
    args: { min: 1, max: 1 },
    flags: [
      FORMAT_FLAG,
      {
        name: 'human',
        short: 'H',
        type: 'bool',
        description: 'Print sizes and dates in human readable format',
        defaultText: 'true',
      },
      { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
      { name: 'platform', type: 'string', description: 'Show history for the given platform' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
    ],
    run: async (ctx, args) => {
      const name = args.positional[0] ?? '';
      const entries =
        (await ctx.client().json<HistoryEntry[] | null>('GET', `/images/${pathEscape(name)}/history`, {
          query: { platform: flagValue(args, 'platform') },
        })) ?? [];
      const human = flagValue(args, 'human') !== 'false';
      const trunc = !flagBool(args, 'no-trunc');
      const now = Date.now();
      const contexts = entries.map((h) => {
        const createdBy = (h.CreatedBy ?? '').replace(/\t/g, ' ');
        return structContext({
          Comment: h.Comment ?? '',
          CreatedAt: rfc3339(h.Created),
          CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
          CreatedSince: human ? timeAgo(h.Created, now) : rfc3339(h.Created),
          ID: trunc ? shortId(h.Id) : h.Id,
          Size: human ? humanSizeWithPrecision(h.Size ?? 0, 3) : String(h.Size ?? 0),
        });
      });
      const defaultTable = human
        ? 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}'
        : 'table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';
      ctx.out(
        renderList(
          { format: flagValue(args, 'format'), defaultTable, headers: HISTORY_HEADERS },
          contexts,
          flagBool(args, 'quiet'),
        ),
      );
      return 0;
    },
  },
  rmi: {
    usage: '[OPTIONS] IMAGE [IMAGE...]',
    description: 'Remove one or more images',
    aliases: ['berth image rm', 'berth image remove', 'berth rmi'],
    args: { min: 1 },
    flags: [
      { name: 'force', short: 'f', type: 'bool', description: 'Force removal of the image' },
      { name: 'no-prune', type: 'bool', description: 'Do not delete untagged parents' },
      { name: 'platform', type: 'stringArray', description: 'Remove only the given platform variant' },
    ],
    run: async (ctx, args) => {
      const force = flagBool(args, 'force');
      const errors: string[] = [];
      let fatal = false;
      for (const name of args.positional) {
        try {
          const deleted =
            (await ctx
              .client()
              .json<Array<{ Untagged?: string; Deleted?: string }> | null>(
                'DELETE',
                `/images/${pathEscape(name)}`,
                {
                  query: {
                    force: force ? '1' : undefined,
                    noprune: flagBool(args, 'no-prune') ? '1' : undefined,
                  },
                },
              )) ?? [];
          for (const item of deleted) {
            ctx.out(item.Deleted ? `Deleted: ${item.Deleted}\n` : `Untagged: ${item.Untagged ?? ''}\n`);
          }
        } catch (err) {
          if (!isNotFound(err)) fatal = true;
          errors.push((err as Error).message);
        }
      }
      if (errors.length > 0) {
        if (!force || fatal) throw new CommandError(errors.join('\n'));
        ctx.err(`${errors.join('\n')}\n`);
      }
      return 0;
    },
  },
  tag: {
    usage: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
    description: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
    aliases: ['berth image tag', 'berth tag'],
    args: { min: 2, max: 2 },
    flags: [],
    run: async (ctx, args) => {
      const [source = '', target = ''] = args.positional;
      const ref = normalizeReference(target, false);
      if (ref.digest !== undefined)
        throw new CommandError('refusing to create a tag with a digest reference');
      await ctx.client().call('POST', `/images/${pathEscape(source)}/tag`, {
        query: { repo: repositoryName(ref), tag: ref.tag ?? DEFAULT_TAG },
      });
      return 0;
    },
  },
  'image prune': {
    usage: '[OPTIONS]',
    description: 'Remove unused images',
    args: { max: 0 },
    flags: [
      {
        name: 'all',
        short: 'a',
        type: 'bool',
        description: 'Remove all unused images, not just dangling ones',
      },
      { ...FILTER_FLAG, short: undefined, description: 'Provide filter values (e.g. "until=<timestamp>")' },
      FORCE_PRUNE_FLAG,
    ],
    run: async (ctx, args) => {
      const all = flagBool(args, 'all');
      const warning = all
        ? 'WARNING! This will remove all images without at least one container associated to them.'
        : 'WARNING! This will remove all dangling images.';
      if (!flagBool(args, 'force') && !(await confirm(ctx, `${warning}\nAre you sure you want to continue?`)))
        return 0;
      const filters = [...flagValues(args, 'filter'), `dangling=${all ? 'false' : 'true'}`];
      const report = await ctx.client().json<{
        ImagesDeleted?: Array<{ Untagged?: string; Deleted?: string }> | null;
        SpaceReclaimed?: number;
      }>('POST', '/images/prune', { query: { filters: filtersJson(filters) } });
      const deleted = report.ImagesDeleted ?? [];
      if (deleted.length > 0) {
        let text = 'Deleted Images:\n';
        for (const item of deleted)
          text += item.Untagged ? `untagged: ${item.Untagged}\n` : `deleted: ${item.Deleted ?? ''}\n`;
        ctx.out(`${text}\n`);
      }
      ctx.out(`Total reclaimed space: ${humanSize(deleted.length > 0 ? (report.SpaceReclaimed ?? 0) : 0)}\n`);
      return 0;
    },
  },
  commit: {
    usage: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
    description: "Create a new image from a container's changes",
    aliases: ['berth container commit', 'berth commit'],
    args: { min: 1, max: 2 },
    flags: [
      {
        name: 'author',
        short: 'a',
        type: 'string',
        description: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")',
      },
      {
        name: 'change',
        short: 'c',
        type: 'list',
        description: 'Apply Dockerfile instruction to the created image',
      },
      { name: 'message', short: 'm', type: 'string', description: 'Commit message' },
      {
        name: 'pause',
        short: 'p',
        type: 'bool',
        description: 'Pause container during commit',
        defaultText: 'true',
      },
    ],
    run: async (ctx, args) => {
      const [container = '', target] = args.positional;
      let repo = '';
      let tag = '';
      if (target !== undefined) {
        const ref = normalizeReference(target, false);
        if (ref.digest !== undefined)
          throw new CommandError('refusing to create a tag with a digest reference');
        repo = repositoryName(ref);
        tag = ref.tag ?? DEFAULT_TAG;
      }
      const changes = flagValues(args, 'change');
      const result = await ctx.client().json<{ Id: string }>('POST', '/commit', {
        query: {
          container,
          repo,
          tag,
          comment: flagValue(args, 'message') ?? '',
          author: flagValue(args, 'author') ?? '',
          pause: flagValue(args, 'pause') === 'false' ? '0' : undefined,
          changes: changes.length > 0 ? changes : undefined,
        },
      });
      ctx.out(`${result.Id}\n`);
      return 0;
    },
  },
};
