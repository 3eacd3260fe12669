/**
 * `berth build`: the context directory (or a tar on stdin) packed with .dockerignore applied and
 * sent to POST /build, as the docker CLI's classic builder does. On a terminal the output is
 * compact (one line per step, redrawn with the step's latest output line); elsewhere, or with
 * --progress=plain, the classic lines are printed as they come.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { flagBool, flagValue, flagValues } from '../args.js';
import type { CommandDef } from '../command.js';
import type { CliContext } from '../context.js';
import { CommandError } from '../errors.js';
import { readJsonMessages } from '../progress.js';
import { extraDockerfileName, packContext } from '../../build/context-tar.js';
import { readAll } from './common.js';

/** `--secret id=x,src=path` (or `env=NAME`): the header value berthd reads. */
async function secretsHeader(ctx: CliContext, specs: string[]): Promise<string | undefined> {
  if (specs.length === 0) return undefined;
  const secrets: Record<string, string> = {};
  for (const spec of specs) {
    const fields = new Map(
      spec.split(',').map((part) => {
        const eq = part.indexOf('=');
        return [eq === -1 ? part : part.slice(0, eq), eq === -1 ? '' : part.slice(eq + 1)] as [
          string,
          string,
        ];
      }),
    );
    const id = fields.get('id');
    if (!id) throw new CommandError(`invalid secret ${spec}: id is required`);
    const source = fields.get('src') ?? fields.get('source');
    const envName = fields.get('env');
    if (source !== undefined) secrets[id] = (await readFile(source)).toString('base64');
    else if (envName !== undefined || ctx.env[id] !== undefined) {
      const value = ctx.env[envName ?? id];
      if (value === undefined)
        throw new CommandError(`secret ${id}: environment variable ${envName ?? id} is not set`);
      secrets[id] = Buffer.from(value).toString('base64');
    } else throw new CommandError(`invalid secret ${spec}: give src=<file> or env=<variable>`);
  }
  return Buffer.from(JSON.stringify(secrets)).toString('base64');
}

function keyValues(values: string[], flag: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq === 0) throw new CommandError(`invalid ${flag} ${value}: the name is empty`);
    // `--build-arg NAME` takes the value from the environment, as docker does.
    if (eq === -1) out[value] = process.env[value] ?? null;
    else out[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return out;
}

/** The compact terminal display: the current step on one redrawn line. */
class CompactDisplay {
  private step = '';
  private last = '';
  private partial = '';

  constructor(
    private readonly ctx: CliContext,
    private readonly width: number,
  ) {}

  private draw(final = false): void {
    const text = this.last === '' ? this.step : `${this.step}  ${this.last}`;
    const line = text.length > this.width - 1 ? `${text.slice(0, this.width - 2)}…` : text;
    this.ctx.out(`\r\x1b[2K${line}${final ? '\n' : ''}`);
  }

  text(chunk: string): void {
    this.partial += chunk;
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (/^Step \d+\/\d+ : /.test(line)) {
        if (this.step !== '') this.draw(true);
        this.step = line;
        this.last = '';
      } else if (/^ ---> Using cache$/.test(line)) this.last = 'CACHED';
      else if (/^ ---> [0-9a-f]{12}$/.test(line) && this.last !== 'CACHED') this.last = 'done';
      else if (/^Successfully (built|tagged) /.test(line)) {
        if (this.step !== '') this.draw(true);
        this.step = '';
        this.ctx.out(`${line}\n`);
        continue;
      } else if (!/^ ---> (Running in|$)|^Removing intermediate container/.test(line))
        this.last = line.trim();
      if (this.step !== '') this.draw();
    }
  }

  end(): void {
    if (this.step !== '') this.draw(true);
    this.step = '';
  }
}

export const commands: Record<string, CommandDef> = {
  build: {
    usage: '[OPTIONS] PATH | URL | -',
    description: 'Build an image from a Dockerfile',
    aliases: ['berth image build', 'berth build', 'berth builder build'],
    args: { min: 1, max: 1 },
    flags: [
      { name: 'build-arg', type: 'list', description: 'Set build-time variables' },
      {
        name: 'cgroup-parent',
        type: 'string',
        description: 'Set the parent cgroup for the "RUN" instructions during build',
      },
      {
        name: 'file',
        short: 'f',
        type: 'string',
        description: "Name of the Dockerfile (Default is 'PATH/Dockerfile')",
      },
      { name: 'force-rm', type: 'bool', description: 'Always remove intermediate containers' },
      { name: 'iidfile', type: 'string', description: 'Write the image ID to the file' },
      { name: 'label', type: 'list', description: 'Set metadata for an image' },
      {
        name: 'network',
        type: 'string',
        description: 'Set the networking mode for the RUN instructions during build (none or host)',
        defaultText: '"default"',
      },
      { name: 'no-cache', type: 'bool', description: 'Do not use cache when building the image' },
      { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
      {
        name: 'progress',
        type: 'string',
        description: 'Set type of progress output (auto, plain, tty)',
        defaultText: '"auto"',
      },
      { name: 'pull', type: 'bool', description: 'Always attempt to pull a newer version of the image' },
      {
        name: 'quiet',
        short: 'q',
        type: 'bool',
        description: 'Suppress the build output and print image ID on success',
      },
      {
        name: 'rm',
        type: 'bool',
        description: 'Remove intermediate containers after a successful build',
        defaultText: 'true',
      },
      {
        name: 'secret',
        type: 'stringArray',
        description: 'Secret to expose to the build: id=mysecret[,src=/local/secret]',
      },
      {
        name: 'tag',
        short: 't',
        type: 'list',
        description: 'Name and optionally a tag in the "name:tag" format',
      },
      { name: 'target', type: 'string', description: 'Set the target build stage to build' },
    ],
    run: async (ctx, args) => {
      const location = args.positional[0] ?? '';
      if (/^[a-z]+:\/\//i.test(location) || location.startsWith('git@'))
        throw new CommandError(
          `unable to prepare context: berth builds from a local directory or a tar on stdin, not ${location}`,
        );
      const file = flagValue(args, 'file');
      let body: Readable;
      let dockerfile: string | undefined;
      if (location === '-') {
        if (file === '-')
          throw new CommandError("invalid argument: can't use stdin for both build context and dockerfile");
        body = ctx.streams.stdin as unknown as Readable;
        dockerfile = file;
      } else {
        const dir = resolve(location);
        let extra: { name: string; content: Buffer } | undefined;
        if (file === '-') extra = { name: extraDockerfileName(), content: await readAll(ctx.streams.stdin) };
        else if (file !== undefined) {
          const path = resolve(file);
          const inside = relative(dir, path);
          if (inside.startsWith('..') || isAbsolute(inside))
            extra = { name: extraDockerfileName(), content: await readFile(path) };
          else dockerfile = inside;
        }
        if (extra) dockerfile = extra.name;
        body = Readable.from(
          packContext(dir, {
            ...(dockerfile ? { dockerfile } : {}),
            ...(extra ? { extraDockerfile: extra } : {}),
          }),
        );
      }
      const quiet = flagBool(args, 'quiet');
      const labels = keyValues(flagValues(args, 'label'), '--label');
      const secrets = await secretsHeader(ctx, flagValues(args, 'secret'));
      const res = await ctx.client().request('POST', '/build', {
        query: {
          t: flagValues(args, 'tag'),
          dockerfile,
          q: quiet ? '1' : undefined,
          nocache: flagBool(args, 'no-cache') ? '1' : undefined,
          pull: flagBool(args, 'pull') ? '1' : undefined,
          forcerm: flagBool(args, 'force-rm') ? '1' : undefined,
          buildargs: JSON.stringify(keyValues(flagValues(args, 'build-arg'), '--build-arg')),
          labels: JSON.stringify(labels),
          target: flagValue(args, 'target'),
          networkmode: flagValue(args, 'network'),
          platform: flagValue(args, 'platform'),
          cgroupparent: flagValue(args, 'cgroup-parent'),
        },
        body,
        contentType: 'application/x-tar',
        ...(secrets ? { headers: { 'X-Berth-Build-Secrets': secrets } } : {}),
      });
      const progress = flagValue(args, 'progress') ?? 'auto';
      const compact = !quiet && (progress === 'tty' || (progress === 'auto' && ctx.stdout.isTTY === true));
      const display = compact ? new CompactDisplay(ctx, ctx.stdout.columns ?? 80) : undefined;
      let id: string | undefined;
      let streamId: string | undefined;
      for await (const message of readJsonMessages(res)) {
        if (message.error !== undefined || message.errorDetail !== undefined) {
          display?.end();
          throw new CommandError(message.errorDetail?.message ?? message.error ?? 'the build failed');
        }
        const aux = message.aux as { ID?: string } | undefined;
        if (aux?.ID !== undefined) id = aux.ID;
        // dockerd's classic builder sends no aux ID: quiet, its one stream line is the ID; else the
        // ID is in "Successfully built <id>" (the docker CLI reads both).
        if (message.stream !== undefined) streamId = builtImageId(message.stream, quiet) ?? streamId;
        if (message.stream === undefined || quiet) continue;
        if (display) display.text(message.stream);
        else ctx.out(message.stream);
      }
      display?.end();
      id ??= streamId;
      if (id === undefined) throw new CommandError('the daemon did not report the built image');
      if (quiet) ctx.out(`${id}\n`);
      const iidfile = flagValue(args, 'iidfile');
      if (iidfile !== undefined) await writeFile(iidfile, id);
      return 0;
    },
  },
};

/** The image ID in a stream line of a builder that sends no aux ID, if the line carries it. */
function builtImageId(stream: string, quiet: boolean): string | undefined {
  const match = quiet
    ? /^(sha256:[0-9a-f]{64})\s*$/.exec(stream)
    : /^Successfully built ([0-9a-f]{12,64})\s*$/.exec(stream);
  return match?.[1];
}
