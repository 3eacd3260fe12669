/** Moving images in and out: pull, push, save, load, import. */
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import { flagBool, flagValue, flagValues } from '../args.js';
import { pathEscape } from '../client.js';
import type { CommandDef } from '../command.js';
import { credentialsFor, encodeAuthHeader, loadConfig } from '../config.js';
import type { CliContext, OutputStream } from '../context.js';
import { CommandError } from '../errors.js';
import { displayJsonMessages } from '../progress.js';
import {
  DEFAULT_TAG,
  formatReference,
  parseReference,
  repositoryName,
  type ImageReference,
} from '../../image/reference.js';

/** A reference as docker normalises it, with docker's error wording. */
export function normalizeReference(input: string, defaultTag = true): ImageReference {
  try {
    return parseReference(input, { defaultTag });
  } catch (err) {
    throw new CommandError(
      `invalid reference format: ${(err as Error).message.replace(/^invalid reference "[^"]*": /, '')}`,
    );
  }
}

/** The X-Registry-Auth header for the registry of a reference. */
export async function registryAuth(ctx: CliContext, ref: ImageReference): Promise<string> {
  const config = await loadConfig(ctx.configDir);
  return encodeAuthHeader(await credentialsFor(config, ref.domain));
}

export const showProgress = (ctx: CliContext, out: OutputStream, response: Readable): Promise<void> =>
  displayJsonMessages(response, out, { terminal: out.isTTY === true, width: out.columns });

export interface PullOptions {
  platform?: string;
  allTags?: boolean;
  /** Where progress goes; undefined discards it. */
  out?: OutputStream;
}

/** POST /images/create?fromImage=...: what `pull`, `run` and `create` send. */
export async function pullImage(ctx: CliContext, ref: ImageReference, options: PullOptions): Promise<void> {
  const res = await ctx.client().request('POST', '/images/create', {
    query: {
      fromImage: repositoryName(ref),
      tag: options.allTags ? undefined : (ref.digest ?? ref.tag),
      platform: options.platform,
    },
    headers: { 'X-Registry-Auth': await registryAuth(ctx, ref) },
  });
  if (options.out) await showProgress(ctx, options.out, res);
  else await displayJsonMessages(res, devNull, { terminal: false });
}

const devNull = new Writable({ write: (_chunk, _encoding, callback) => callback() });

/** Writes a stream to a file through a temporary file, as docker's CopyToFile does. */
async function copyToFile(path: string, source: Readable): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.berth-${process.pid}`);
  try {
    await pipeline(source, createWriteStream(temp, { mode: 0o644 }));
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

export const commands: Record<string, CommandDef> = {
  pull: {
    usage: '[OPTIONS] NAME[:TAG|@DIGEST]',
    description: 'Download an image from a registry',
    aliases: ['berth image pull', 'berth pull'],
    args: { min: 1, max: 1 },
    flags: [
      {
        name: 'all-tags',
        short: 'a',
        type: 'bool',
        description: 'Download all tagged images in the repository',
      },
      {
        name: 'disable-content-trust',
        type: 'bool',
        description: 'Skip image verification (default true)',
        hidden: true,
      },
      { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress verbose output' },
    ],
    run: async (ctx, args) => {
      const all = flagBool(args, 'all-tags');
      const quiet = flagBool(args, 'quiet');
      const input = args.positional[0] ?? '';
      const bare = normalizeReference(input, false);
      const nameOnly = bare.tag === undefined && bare.digest === undefined;
      if (all && !nameOnly) throw new CommandError("tag can't be used with --all-tags/-a");
      let ref = bare;
      if (!all && nameOnly) {
        ref = { ...bare, tag: DEFAULT_TAG };
        if (!quiet) ctx.out(`Using default tag: ${DEFAULT_TAG}\n`);
      }
      await pullImage(ctx, ref, {
        platform: flagValue(args, 'platform'),
        allTags: all,
        out: quiet ? undefined : ctx.stdout,
      });
      ctx.out(`${formatReference(ref)}\n`);
      return 0;
    },
  },
  push: {
    usage: '[OPTIONS] NAME[:TAG]',
    description: 'Upload an image to a registry',
    aliases: ['berth image push', 'berth push'],
    args: { min: 1, max: 1 },
    flags: [
      {
        name: 'all-tags',
        short: 'a',
        type: 'bool',
        description: 'Push all tags of an image to the repository',
      },
      {
        name: 'disable-content-trust',
        type: 'bool',
        description: 'Skip image signing (default true)',
        hidden: true,
      },
      {
        name: 'platform',
        type: 'string',
        description: 'Push a platform-specific manifest as a single-platform image',
      },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress verbose output' },
    ],
    run: async (ctx, args) => {
      const all = flagBool(args, 'all-tags');
      const quiet = flagBool(args, 'quiet');
      const bare = normalizeReference(args.positional[0] ?? '', false);
      const nameOnly = bare.tag === undefined && bare.digest === undefined;
      if (all && !nameOnly) throw new CommandError("tag can't be used with --all-tags/-a");
      let ref = bare;
      if (!all && nameOnly) {
        ref = { ...bare, tag: DEFAULT_TAG };
        if (!quiet) ctx.out(`Using default tag: ${DEFAULT_TAG}\n`);
      }
      const platform = flagValue(args, 'platform');
      const res = await ctx.client().request('POST', `/images/${pathEscape(repositoryName(ref))}/push`, {
        query: {
          tag: all ? undefined : ref.tag,
          platform: platform === undefined ? undefined : platformJson(platform),
        },
        headers: { 'X-Registry-Auth': await registryAuth(ctx, ref) },
      });
      if (quiet) {
        await displayJsonMessages(res, devNull, { terminal: false });
        ctx.out(`${formatReference(ref)}\n`);
      } else await showProgress(ctx, ctx.stdout, res);
      return 0;
    },
  },
  save: {
    usage: '[OPTIONS] IMAGE [IMAGE...]',
    description: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
    aliases: ['berth image save', 'berth save'],
    args: { min: 1 },
    flags: [
      { name: 'output', short: 'o', type: 'string', description: 'Write to a file, instead of STDOUT' },
      { name: 'platform', type: 'stringArray', description: 'Save only the given platform(s)' },
    ],
    run: async (ctx, args) => {
      const output = flagValue(args, 'output');
      if (output === undefined && ctx.stdout.isTTY) {
        throw new CommandError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
      }
      const platforms = flagValues(args, 'platform');
      const res = await ctx.client().request('GET', '/images/get', {
        query: {
          names: args.positional,
          platform: platforms.length > 0 ? platforms.map(platformJson) : undefined,
        },
      });
      if (output !== undefined) await copyToFile(output, res);
      else await pipeline(res, ctx.stdout as NodeJS.WritableStream, { end: false });
      return 0;
    },
  },
  load: {
    usage: '[OPTIONS]',
    description: 'Load an image from a tar archive or STDIN',
    aliases: ['berth image load', 'berth load'],
    args: { max: 0 },
    flags: [
      {
        name: 'input',
        short: 'i',
        type: 'string',
        description: 'Read from tar archive file, instead of STDIN',
      },
      { name: 'platform', type: 'stringArray', description: 'Load only the given platform(s)' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the load output' },
    ],
    run: async (ctx, args) => {
      const input = flagValue(args, 'input');
      if (input === undefined && ctx.streams.stdin.isTTY) {
        throw new CommandError('requested load from stdin, but stdin is empty');
      }
      const body = input === undefined ? (ctx.streams.stdin as unknown as Readable) : createReadStream(input);
      const quiet = flagBool(args, 'quiet') || !ctx.stdout.isTTY;
      const platforms = flagValues(args, 'platform');
      const res = await ctx.client().request('POST', '/images/load', {
        query: {
          quiet: quiet ? '1' : undefined,
          platform: platforms.length > 0 ? platforms.map(platformJson) : undefined,
        },
        body,
        contentType: 'application/x-tar',
      });
      if (String(res.headers['content-type'] ?? '').includes('json'))
        await showProgress(ctx, ctx.stdout, res);
      else await pipeline(res, ctx.stdout as NodeJS.WritableStream, { end: false });
      return 0;
    },
  },
  import: {
    usage: '[OPTIONS] file|URL|- [REPOSITORY[:TAG]]',
    description: 'Import the contents from a tarball to create a filesystem image',
    aliases: ['berth image import', 'berth import'],
    args: { min: 1, max: 2 },
    flags: [
      {
        name: 'change',
        short: 'c',
        type: 'list',
        description: 'Apply Dockerfile instruction to the created image',
      },
      { name: 'message', short: 'm', type: 'string', description: 'Set commit message for imported image' },
      { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
    ],
    run: async (ctx, args) => {
      const [source = '', repository] = args.positional;
      if (repository !== undefined) normalizeReference(repository, false);
      let body: Readable | undefined;
      let fromSrc = source;
      if (source === '-') body = ctx.streams.stdin as unknown as Readable;
      else if (!/^(https?:\/\/)/.test(source)) {
        body = createReadStream(source);
        fromSrc = '-';
      }
      const changes = flagValues(args, 'change');
      const res = await ctx.client().request('POST', '/images/create', {
        query: {
          fromSrc,
          repo: repository,
          message: flagValue(args, 'message'),
          changes: changes.length > 0 ? changes : undefined,
          platform: flagValue(args, 'platform'),
        },
        body,
        contentType: 'application/x-tar',
      });
      await showProgress(ctx, ctx.stdout, res);
      return 0;
    },
  },
};

/** docker sends a platform filter as the JSON of an OCI platform. */
function platformJson(platform: string): string {
  const [os = '', architecture = '', variant] = platform.toLowerCase().split('/');
  const value: Record<string, string> = { architecture, os };
  if (variant) value.variant = variant;
  return JSON.stringify(value);
}
