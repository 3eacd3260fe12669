/**
 * The builder: a Dockerfile's stages turned into images, step by step, with the build cache.
 *
 * - Only the stages the target needs are built (FROM <stage>, COPY --from, RUN --mount from=),
 *   and stages that do not depend on each other run at the same time; their output is still
 *   printed in Dockerfile order (output.ts).
 * - Every step makes an image (config digest = ID) that is not recorded in the image store:
 *   only the final image gets a record and the tags. Steps are found again through the cache
 *   (cache.ts); a config-only step stores a config and a manifest, a filesystem step also a layer.
 * - RUN runs a container (run.ts) on an overlay snapshot of the parent; COPY/ADD apply a tar
 *   stream to the snapshot's upper directory (copy.ts). Either way the layer is the upper
 *   directory (archive/diff.ts) and the snapshot is committed as the layer's, not unpacked again.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { applyTar } from '../archive/apply.js';
import { diffOverlayUpper } from '../archive/diff.js';
import { BerthError, invalidArgument, notFound } from '../common/errors.js';
import { commitImage, type ImageDocuments } from '../image/commit.js';
import type { ImageService } from '../image/image-service.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../image/registry/platform.js';
import { chainIdsOf } from '../image/store/image-store.js';
import { SharedLock } from '../image/store/lock.js';
import { familiarName } from '../image/store/names.js';
import type { ContainerConfig, HealthConfig } from '../oci/image-spec.js';
import type { Mount as OciMount } from '../oci/runtime-spec.js';
import { cgroupfsFactory } from '../runtime/default-runtime.js';
import type { CgroupFactory, Runtime } from '../runtime/runtime.js';
import { mountAll, mountPointsUnder, unmount } from '../snapshot/mount.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { contentSource, download, extractIfArchive, isUrl } from './add.js';
import { cacheKey, type BuildCache } from './cache.js';
import { cachedSteps, cacheRecords, type CacheRecord } from './cache-usage.js';
import { contentSum, downloadName, downloadSum, OwnerNames, SourceHasher, sourcesHash } from './checksum.js';
import {
  copyStream,
  DestinationView,
  matchSources,
  parseChmod,
  resolveInTree,
  type CopySource,
} from './copy.js';
import { atPosition } from './dockerfile/errors.js';
import {
  readDockerfile,
  type CommandLine,
  type Dockerfile,
  type Instruction,
  type InstructionOf,
  type Stage,
} from './dockerfile/instructions.js';
import { heredocWord, parseDockerfile } from './dockerfile/parser.js';
import {
  copyHistoryText,
  DEFAULT_SHELL,
  exposeHistoryText,
  healthcheckHistoryText,
  nopCreatedBy,
  nopStringCreatedBy,
  setEnv,
  shellHistoryText,
} from './history.js';
import { expandHeredoc, processWord, processWords, type Lookup } from './dockerfile/shell-lex.js';
import { parseMount, type MountSpec } from './mounts.js';
import { OrderedOutput } from './output.js';
import { freeSpace, pruneBuildCache, type PruneOptions, type PruneReport } from './prune.js';
import { runStep, type BuildBridge, type RunNetwork } from './run.js';
import { cleanUpSteps, StepRecords } from './step-records.js';

export const PROXY_ARGS = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];
/** Under the scratch space: notes of step containers (step-records.ts). */
const STEP_RECORDS = 'steps';
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface BuilderDeps {
  images: ImageService;
  snapshotter: Snapshotter;
  runtime: Runtime;
  cache: BuildCache;
  /** Scratch space for builds (context, mounts, bundles): `<dataRoot>/build-tmp`. */
  tempRoot: string;
  /** The default bridge for RUN steps; without it the default network is an empty namespace. */
  bridge?: BuildBridge;
  /** The runtime's cgroup driver (default cgroupfs): recovery removes cgroups of unrecorded step containers. */
  cgroups?: CgroupFactory;
  /** Where recovery reports what it could not remove. */
  warn?: (message: string) => void;
}

export interface BuildRequest {
  /** The unpacked context directory. */
  contextDir: string;
  dockerfile: string;
  /** For error messages. */
  dockerfileName?: string;
  tags?: string[];
  buildArgs?: Record<string, string | null>;
  labels?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  pull?: boolean;
  network?: RunNetwork;
  platform?: string;
  cgroupParent?: string;
  secrets?: Map<string, Buffer>;
  signal?: AbortSignal;
  /** Classic builder text (`Step 1/3 : FROM busybox\n`, RUN output, ...). */
  output: (text: string) => void;
}

export interface BuildResult {
  /** The final image ID. */
  id: string;
  /** Normalised tags recorded. */
  tags: string[];
}

/** A step failed with a command exit code (Docker reports it as the error's code). */
export class StepFailedError extends BerthError {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super('invalid-argument', message);
  }
}

/** Where a stage is during its build. */
interface State {
  image: ImageDocuments | undefined;
  /** Image ID of the current step ('' for scratch). */
  id: string;
  manifest: string;
  config: ContainerConfig;
  author?: string;
  /** ARGs declared in this stage, with their values. */
  args: Map<string, string>;
  cmdSet: boolean;
}

interface StageResult {
  state: State;
}

const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);
const randomId = (): string => randomBytes(32).toString('hex');

function envMap(config: ContainerConfig): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of config.Env ?? []) {
    const eq = entry.indexOf('=');
    map.set(eq === -1 ? entry : entry.slice(0, eq), eq === -1 ? '' : entry.slice(eq + 1));
  }
  return map;
}

/** Go's time.ParseDuration for HEALTHCHECK flags, in nanoseconds. */
function durationNs(flag: string, text: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  if (text === '0') return 0;
  let total = 0;
  let rest = text;
  while (rest !== '') {
    const match = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (match === null)
      throw invalidArgument(`invalid value for --${flag}: time: invalid duration "${text}"`);
    total += Number(match[1]) * (units[match[2] as string] as number);
    rest = rest.slice(match[0].length);
  }
  return Math.round(total);
}

/** Go's %q of a string slice, as the classic builder prints configs in history. */
const goQuoted = (values: string[]): string => `[${values.map((v) => JSON.stringify(v)).join(' ')}]`;

function cloneConfig(config: ContainerConfig | undefined): ContainerConfig {
  return JSON.parse(JSON.stringify(config ?? {})) as ContainerConfig;
}

export class Builder {
  /** Builds hold it shared, a prune exclusive: nothing a build reads or writes goes under it. */
  private readonly lock = new SharedLock();
  /** Cache keys and cache mount names running builds use, with how many builds use each. */
  private readonly using = new Map<string, number>();

  constructor(private readonly deps: BuilderDeps) {}

  /** Remove what a crashed build left behind: scratch space and the snapshots of unfinished steps. */
  async recover(): Promise<void> {
    // A crash in the middle of a build leaves its step container running and its root mounted,
    // or, in the middle of its creation, a cgroup that only the step's record names.
    for (const { record } of await this.deps.runtime.list())
      if (record.bundle.startsWith(`${this.deps.tempRoot}/`))
        await this.deps.runtime.delete(record.id, true).catch(() => undefined);
    await cleanUpSteps(
      new StepRecords(join(this.deps.tempRoot, STEP_RECORDS)),
      this.deps.runtime,
      this.deps.cgroups ?? cgroupfsFactory,
      this.deps.warn ?? (() => undefined),
    );
    for (const point of await mountPointsUnder(this.deps.tempRoot))
      await unmount(point).catch(() => undefined);
    await rm(this.deps.tempRoot, { recursive: true, force: true });
    const stale: string[] = [];
    await this.deps.snapshotter.walk((info) => {
      if (info.kind !== 'committed' && info.name.startsWith('build-')) stale.push(info.name);
    });
    for (const key of stale) await this.deps.snapshotter.remove(key).catch(() => undefined);
  }

  async build(request: BuildRequest): Promise<BuildResult> {
    const file = request.dockerfileName ?? 'Dockerfile';
    const dockerfile = readDockerfile(request.dockerfile, file);
    for (const warning of dockerfile.warnings) request.output(`[Warning] ${warning}\n`);
    if (request.platform !== undefined && request.platform !== '') this.checkPlatform(request.platform);
    return this.lock.withShared(async () => {
      const workDir = join(this.deps.tempRoot, randomId().slice(0, 16));
      const used = new Set<string>();
      const use = (key: string): void => {
        if (used.has(key)) return;
        used.add(key);
        this.using.set(key, (this.using.get(key) ?? 0) + 1);
      };
      await mkdir(workDir, { recursive: true });
      try {
        return await new BuildRun(this.deps, request, dockerfile, workDir, use).run();
      } finally {
        for (const key of used) {
          const count = (this.using.get(key) ?? 1) - 1;
          if (count > 0) this.using.set(key, count);
          else this.using.delete(key);
        }
        await rm(workDir, { recursive: true, force: true });
        // Cache hits and dropped entries are written once per build; failing that loses only their times.
        await this.deps.cache.flush().catch(() => undefined);
      }
    });
  }

  /** The build cache as Docker's records (`/system/df`). */
  usage(): Promise<CacheRecord[]> {
    return cacheRecords(this.deps, (key) => this.using.has(key));
  }

  /** What the cache keeps of the image store: its steps' manifests and layer chain IDs. */
  async held(): Promise<{ manifests: string[]; chainIds: string[] }> {
    const { steps } = await cachedSteps(this.deps);
    return {
      manifests: steps.map((step) => step.entry.manifest),
      chainIds: steps.flatMap((step) => step.chainIds),
    };
  }

  /** `POST /build/prune`: waits for running builds; new ones wait for it. */
  prune(options: PruneOptions): Promise<PruneReport> {
    return this.lock.withExclusive(() =>
      this.deps.images.withExclusiveStoreLock(() =>
        pruneBuildCache(this.deps, options, () =>
          freeSpace(dirname(this.deps.cache.dir)).catch(() => Infinity),
        ),
      ),
    );
  }

  private checkPlatform(platform: string): void {
    const host = formatPlatform(hostPlatform());
    if (formatPlatform(parsePlatform(platform)) !== host)
      throw invalidArgument(
        `platform ${platform} is not supported: berth builds for the host platform (${host})`,
      );
  }
}

class BuildRun {
  /** Host user and group names, for the hashes of files from images (COPY --from) and downloads. */
  private readonly owners = new OwnerNames();
  private readonly contextHasher: SourceHasher;
  private readonly controller = new AbortController();
  private readonly globalArgs = new Map<string, string>();
  private readonly consumedArgs = new Set<string>();
  private readonly stageRuns = new Map<number, Promise<StageResult>>();
  private readonly stageOrder: Stage[];
  private readonly stepOffsets = new Map<number, number>();
  private readonly totalSteps: number;
  private readonly out: OrderedOutput;
  private readonly buildArgs: Map<string, string>;
  private readonly currentStage = new WeakMap<State, number>();
  private tempCounter = 0;

  constructor(
    private readonly deps: BuilderDeps,
    private readonly request: BuildRequest,
    private readonly dockerfile: Dockerfile,
    private readonly workDir: string,
    /** Marks a cache key or cache mount as used by this build. */
    private readonly use: (key: string) => void,
  ) {
    this.contextHasher = new SourceHasher(request.contextDir, 'context', this.owners);
    this.buildArgs = new Map(
      Object.entries(request.buildArgs ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'),
    );
    const platform = hostPlatform();
    const platformText = formatPlatform(platform);
    for (const [name, value] of [
      ['BUILDPLATFORM', platformText],
      ['BUILDOS', platform.os],
      ['BUILDARCH', platform.architecture],
      ['BUILDVARIANT', platform.variant ?? ''],
      ['TARGETPLATFORM', platformText],
      ['TARGETOS', platform.os],
      ['TARGETARCH', platform.architecture],
      ['TARGETVARIANT', platform.variant ?? ''],
    ] as const)
      this.globalArgs.set(name, value);
    for (const arg of dockerfile.metaArgs) {
      for (const { name, value } of arg.args) {
        this.consumedArgs.add(name);
        const given = this.buildArgs.get(name);
        const fallback =
          value === undefined
            ? undefined
            : this.expand(arg, () => processWord(value, this.lookupGlobal(), dockerfile.escape));
        const effective = given ?? fallback;
        if (effective !== undefined) this.globalArgs.set(name, effective);
        else this.globalArgs.delete(name);
      }
    }
    const target = this.targetStage();
    const needed = this.neededStages(target);
    this.stageOrder = dockerfile.stages.filter((stage) => needed.has(stage.index));
    if (request.labels && Object.keys(request.labels).length > 0) {
      // Like the classic builder: --label becomes a LABEL step at the end of the target stage.
      const text = Object.entries(request.labels)
        .map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`)
        .join(' ');
      const raw = parseDockerfile(`LABEL ${text}`).instructions[0];
      if (raw)
        target.instructions = [
          ...target.instructions,
          {
            kind: 'LABEL',
            raw,
            flags: new Map(),
            pairs: Object.entries(request.labels).map(([k, v]) => ({
              key: JSON.stringify(k),
              value: JSON.stringify(v),
            })),
          },
        ];
    }
    let offset = 0;
    for (const stage of this.stageOrder) {
      this.stepOffsets.set(stage.index, offset);
      offset += stage.instructions.length + 1;
    }
    this.totalSteps = offset;
    this.out = new OrderedOutput(this.stageOrder.length, request.output);
    request.signal?.addEventListener('abort', () => this.controller.abort(), { once: true });
  }

  private lookupGlobal(): Lookup {
    return (name) => this.globalArgs.get(name);
  }

  /** Errors from expansion and argument checks, restated at the instruction's position. */
  private expand<T>(instruction: { raw: { line: number; restColumn: number } }, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw atPosition(this.dockerfile.file, instruction.raw.line, instruction.raw.restColumn, err);
    }
  }

  private stageByName(name: string): Stage | undefined {
    const lower = name.toLowerCase();
    const byName = this.dockerfile.stages.find((stage) => stage.name === lower);
    if (byName) return byName;
    if (/^\d+$/.test(name)) return this.dockerfile.stages[Number(name)];
    return undefined;
  }

  private targetStage(): Stage {
    if (this.request.target === undefined || this.request.target === '')
      return this.dockerfile.stages.at(-1) as Stage;
    const stage = this.dockerfile.stages.find((s) => s.name === this.request.target?.toLowerCase());
    if (!stage) throw invalidArgument(`failed to reach build target ${this.request.target} in Dockerfile`);
    return stage;
  }

  /** Names of stages (or images) a stage reads from, with global args expanded. */
  private references(stage: Stage): string[] {
    const refs: string[] = [];
    const word = (text: string): string => processWord(text, this.lookupGlobal(), this.dockerfile.escape);
    refs.push(this.expand(stage.from, () => word(stage.from.image)));
    for (const instruction of stage.instructions) {
      for (const from of instruction.flags.get('from') ?? [])
        refs.push(this.expand(instruction, () => word(from)));
      for (const mount of instruction.flags.get('mount') ?? []) {
        const match = /(?:^|,)from=([^,]+)/.exec(mount);
        if (match) refs.push(this.expand(instruction, () => word(match[1] as string)));
      }
    }
    return refs;
  }

  private neededStages(target: Stage): Set<number> {
    const needed = new Set<number>();
    const visit = (stage: Stage): void => {
      if (needed.has(stage.index)) return;
      needed.add(stage.index);
      for (const ref of this.references(stage)) {
        const dependency = this.stageByName(ref);
        if (dependency && dependency.index < stage.index) visit(dependency);
      }
    };
    visit(target);
    return needed;
  }

  private tempDir(prefix: string): string {
    return join(this.workDir, `${prefix}-${++this.tempCounter}`);
  }

  async run(): Promise<BuildResult> {
    const target = this.stageOrder.at(-1) as Stage;
    let result: StageResult;
    try {
      const all = this.stageOrder.map((stage) => this.stageResult(stage));
      const settled = await Promise.allSettled(all);
      const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failure) throw failure.reason;
      result = await this.stageResult(target);
    } finally {
      this.controller.abort();
    }
    const unused = [...this.buildArgs.keys()].filter(
      (name) => !this.consumedArgs.has(name) && !PROXY_ARGS.includes(name),
    );
    if (unused.length > 0)
      this.request.output(
        `[Warning] One or more build-args [${unused.sort().join(' ')}] were not consumed\n`,
      );
    const final = result.state;
    if (final.id === '')
      throw invalidArgument('the target stage is an empty scratch image: nothing to build');
    const tags = this.request.tags ?? [];
    const recorded = await this.deps.images.images.record(
      { manifest: await this.manifestDescriptor(final.manifest) },
      tags,
    );
    this.request.output(`Successfully built ${shortId(final.id)}\n`);
    for (const tag of recorded.names) this.request.output(`Successfully tagged ${familiarName(tag)}\n`);
    return { id: final.id, tags: recorded.names };
  }

  private async manifestDescriptor(
    digest: string,
  ): Promise<{ mediaType: string; digest: string; size: number }> {
    const info = await this.deps.images.content.info(digest);
    if (!info) throw notFound(`manifest ${digest} of the built image is missing`);
    return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: info.size };
  }

  private stageResult(stage: Stage): Promise<StageResult> {
    let pending = this.stageRuns.get(stage.index);
    if (!pending) {
      pending = this.buildStage(stage);
      this.stageRuns.set(stage.index, pending);
    }
    return pending;
  }

  private async buildStage(stage: Stage): Promise<StageResult> {
    const channel = this.stageOrder.indexOf(stage);
    const say = (text: string): void => this.out.write(channel, text);
    try {
      let step = (this.stepOffsets.get(stage.index) ?? 0) + 1;
      say(`Step ${step}/${this.totalSteps} : ${stage.from.raw.original}\n`);
      const state = await this.from(stage, say);
      this.currentStage.set(state, stage.index);
      for (const instruction of stage.instructions) {
        this.controller.signal.throwIfAborted();
        step++;
        say(`Step ${step}/${this.totalSteps} : ${instruction.raw.original}\n`);
        await this.step(state, instruction, say);
      }
      return { state };
    } catch (err) {
      this.controller.abort();
      throw err;
    } finally {
      this.out.finish(channel);
    }
  }

  private async from(stage: Stage, say: (text: string) => void): Promise<State> {
    const name = this.expand(stage.from, () =>
      processWord(stage.from.image, this.lookupGlobal(), this.dockerfile.escape),
    );
    const platform = stage.from.flags.get('platform')?.[0];
    if (platform !== undefined) {
      const expanded = this.expand(stage.from, () =>
        processWord(platform, this.lookupGlobal(), this.dockerfile.escape),
      );
      const host = formatPlatform(hostPlatform());
      if (formatPlatform(parsePlatform(expanded)) !== host)
        throw atPosition(
          this.dockerfile.file,
          stage.from.raw.line,
          stage.from.raw.column,
          invalidArgument(`FROM --platform=${expanded} is not supported: berth builds for ${host}`),
        );
    }
    const dependency = this.stageByName(name);
    let state: State;
    if (dependency && dependency.index < stage.index) {
      const base = (await this.stageResult(dependency)).state;
      state = { ...base, config: cloneConfig(base.config), args: new Map(), cmdSet: false };
    } else if (name.toLowerCase() === 'scratch') {
      state = {
        image: undefined,
        id: '',
        manifest: '',
        config: { Env: [DEFAULT_PATH] },
        args: new Map(),
        cmdSet: false,
      };
    } else {
      const image = await this.baseImage(name);
      const config = cloneConfig(image.documents.config.config);
      state = {
        image: image.documents,
        id: image.id,
        manifest: image.manifest,
        config,
        args: new Map(),
        cmdSet: false,
        ...(image.documents.config.author ? { author: image.documents.config.author } : {}),
      };
    }
    say(state.id === '' ? ' ---> \n' : ` ---> ${shortId(state.id)}\n`);
    const triggers = state.config.OnBuild ?? [];
    if (triggers.length > 0) {
      say(`# Executing ${triggers.length} build trigger${triggers.length === 1 ? '' : 's'}\n`);
      state.config.OnBuild = null;
      for (const trigger of triggers) {
        const instruction = readDockerfile(`FROM scratch\n${trigger}`, this.dockerfile.file).stages[0]
          ?.instructions[0];
        if (instruction) await this.step(state, instruction, say);
      }
    } else if (state.config.OnBuild) state.config.OnBuild = null;
    return state;
  }

  private async baseImage(
    name: string,
  ): Promise<{ id: string; manifest: string; documents: ImageDocuments }> {
    const store = this.deps.images.images;
    let resolved;
    try {
      if (this.request.pull) throw notFound('pull requested');
      resolved = store.resolve(name);
    } catch (err) {
      if (!(err instanceof BerthError && err.kind === 'not-found')) throw err;
      await this.deps.images.pull(name, { signal: this.controller.signal });
      resolved = store.resolve(name);
    }
    await this.deps.images.unpack(resolved.id);
    return {
      id: resolved.id,
      manifest: resolved.target.manifest.digest,
      documents: {
        config: await store.blobs.config(resolved.id),
        manifest: await store.blobs.manifest(resolved.target.manifest.digest),
      },
    };
  }

  /** Variables for expansion in a stage: ENV wins over ARG. */
  private lookup(state: State, used?: Set<string>): Lookup {
    const env = envMap(state.config);
    return (name) => {
      if (env.has(name)) return env.get(name);
      if (state.args.has(name)) used?.add(name);
      return state.args.get(name);
    };
  }

  private word(
    state: State,
    instruction: { raw: { line: number; restColumn: number } },
    text: string,
  ): string {
    return this.expand(instruction, () => processWord(text, this.lookup(state), this.dockerfile.escape));
  }

  /** Build args a RUN sees: declared ones with a value, not shadowed by ENV, and proxy args given. */
  private runArgs(state: State): Array<[string, string]> {
    const env = envMap(state.config);
    const args = [...state.args].filter(([name]) => !env.has(name));
    return args.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  private async step(state: State, instruction: Instruction, say: (text: string) => void): Promise<void> {
    switch (instruction.kind) {
      case 'RUN':
        return this.runInstruction(state, instruction, say);
      case 'COPY':
      case 'ADD':
        return this.copyInstruction(state, instruction, say);
      case 'WORKDIR':
        return this.workdir(state, instruction, say);
      case 'ARG':
        return this.arg(state, instruction, say);
      default:
        return this.configStep(state, instruction, say);
    }
  }

  /** Reuse a cached step's image if its blobs and snapshot are all still there. */
  private async cached(
    key: string,
  ): Promise<{ id: string; manifest: string; documents: ImageDocuments } | undefined> {
    if (this.request.noCache) return undefined;
    const entry = this.deps.cache.get(key);
    if (!entry) return undefined;
    try {
      const blobs = this.deps.images.images.blobs;
      const manifest = await blobs.manifest(entry.manifest);
      const config = await blobs.config(entry.id);
      for (const layer of manifest.layers)
        if (!(await this.deps.images.content.info(layer.digest))) throw notFound(layer.digest);
      const top = chainIdsOf(config.rootfs.diff_ids).at(-1);
      if (top !== undefined && (await this.deps.snapshotter.stat(top)).kind !== 'committed')
        throw notFound(top);
      return { id: entry.id, manifest: entry.manifest, documents: { config, manifest } };
    } catch (err) {
      if (err instanceof BerthError && err.kind === 'not-found') {
        this.deps.cache.delete(key);
        return undefined;
      }
      throw err;
    }
  }

  private adopt(state: State, image: { id: string; manifest: string; documents: ImageDocuments }): void {
    state.image = image.documents;
    state.id = image.id;
    state.manifest = image.manifest;
    state.config = cloneConfig(image.documents.config.config);
  }

  /** Look the step up in the cache; on a miss run `make` and remember its image. */
  private async withCache(
    state: State,
    createdBy: string,
    extra: string[],
    say: (text: string) => void,
    make: () => Promise<{ id: string; manifest: string; documents: ImageDocuments }>,
  ): Promise<void> {
    const key = cacheKey(state.id, createdBy, extra);
    this.use(key);
    const hit = await this.cached(key);
    if (hit) {
      say(' ---> Using cache\n');
      this.deps.cache.touch(key);
      this.adopt(state, hit);
    } else {
      const made = await make();
      await this.deps.cache.set(key, {
        id: made.id,
        manifest: made.manifest,
        parent: state.id,
        description: createdBy,
      });
      this.adopt(state, made);
    }
    say(` ---> ${shortId(state.id)}\n`);
  }

  private async commit(
    state: State,
    createdBy: string,
    layer?: { stream: AsyncIterable<Uint8Array>; snapshotKey: string },
    config: ContainerConfig = state.config,
  ): Promise<{ id: string; manifest: string; documents: ImageDocuments }> {
    const result = await commitImage(this.deps.images, {
      ...(state.image ? { parentImage: state.image } : {}),
      config,
      history: { created_by: createdBy, ...(layer ? {} : { empty_layer: true }) },
      ...(state.author !== undefined ? { author: state.author } : {}),
      record: false,
      snapshotter: this.deps.snapshotter,
      ...(layer ? { layer: layer.stream, snapshotKey: layer.snapshotKey } : {}),
    });
    return {
      id: result.id,
      manifest: result.target.manifest.digest,
      documents: { config: result.config, manifest: result.manifest },
    };
  }

  /** Prepare a snapshot on the parent, let `fill` write into it, and commit its upper directory as a layer. */
  private async layerStep(
    state: State,
    createdBy: string,
    config: ContainerConfig,
    fill: (key: string, upper: string, lowers: string[]) => Promise<void>,
  ): Promise<{ id: string; manifest: string; documents: ImageDocuments }> {
    const key = `build-${randomId().slice(0, 24)}`;
    const parentChain = state.image ? chainIdsOf(state.image.config.rootfs.diff_ids).at(-1) : undefined;
    await this.deps.snapshotter.prepare(key, parentChain);
    let committed = false;
    try {
      const target = await this.deps.snapshotter.layerTarget(key);
      await fill(key, target.root, target.lowers);
      const made = await this.commit(
        state,
        createdBy,
        { stream: diffOverlayUpper(target.root), snapshotKey: key },
        config,
      );
      committed = true;
      return made;
    } finally {
      if (!committed) await this.deps.snapshotter.remove(key).catch(() => undefined);
    }
  }

  private async configStep(
    state: State,
    instruction: Instruction,
    say: (text: string) => void,
  ): Promise<void> {
    const config = cloneConfig(state.config);
    let text: string;
    const shellForm = (command: CommandLine): string[] =>
      'json' in command ? command.json : [...(config.Shell ?? DEFAULT_SHELL), command.shell];
    switch (instruction.kind) {
      case 'CMD':
        config.Cmd = shellForm(instruction.command);
        state.cmdSet = true;
        text = `CMD ${goQuoted(config.Cmd)}`;
        break;
      case 'ENTRYPOINT':
        config.Entrypoint = shellForm(instruction.command);
        if (!state.cmdSet) config.Cmd = null;
        text = `ENTRYPOINT ${goQuoted(config.Entrypoint)}`;
        break;
      case 'SHELL':
        config.Shell = instruction.shell;
        text = shellHistoryText(instruction.shell);
        break;
      case 'ENV': {
        const lookup = this.lookup(state);
        const pairs = instruction.pairs.map(({ key, value }) =>
          this.expand(instruction, () => [
            processWord(key, lookup, this.dockerfile.escape),
            processWord(value, lookup, this.dockerfile.escape),
          ]),
        );
        for (const [key, value] of pairs) {
          if (key === '')
            throw atPosition(
              this.dockerfile.file,
              instruction.raw.line,
              instruction.raw.restColumn,
              invalidArgument('ENV names can not be blank'),
            );
          setEnv(config, key as string, value as string);
        }
        text = `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
        break;
      }
      case 'LABEL': {
        const lookup = this.lookup(state);
        const labels = { ...(config.Labels ?? {}) };
        const pairs = instruction.pairs.map(({ key, value }) =>
          this.expand(instruction, () => [
            processWord(key, lookup, this.dockerfile.escape),
            processWord(value, lookup, this.dockerfile.escape),
          ]),
        );
        for (const [key, value] of pairs) labels[key as string] = value as string;
        config.Labels = labels;
        text = `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
        break;
      }
      case 'EXPOSE': {
        const ports = this.expand(instruction, () =>
          processWords(instruction.text, this.lookup(state), this.dockerfile.escape),
        );
        const exposed = { ...(config.ExposedPorts ?? {}) };
        for (const port of ports) {
          const match = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(port);
          if (match === null)
            throw atPosition(
              this.dockerfile.file,
              instruction.raw.line,
              instruction.raw.restColumn,
              invalidArgument(`invalid containerPort: ${port}`),
            );
          const first = Number(match[1]);
          const last = match[2] === undefined ? first : Number(match[2]);
          const proto = (match[3] ?? 'tcp').toLowerCase();
          for (let p = first; p <= last && p - first < 65536; p++) exposed[`${p}/${proto}`] = {};
        }
        config.ExposedPorts = exposed;
        text = exposeHistoryText(ports);
        break;
      }
      case 'USER':
        config.User = this.word(state, instruction, instruction.text);
        text = `USER ${config.User}`;
        break;
      case 'STOPSIGNAL':
        config.StopSignal = this.word(state, instruction, instruction.text);
        text = `STOPSIGNAL ${config.StopSignal}`;
        break;
      case 'MAINTAINER':
        state.author = instruction.text;
        text = `MAINTAINER ${instruction.text}`;
        break;
      case 'VOLUME': {
        const paths =
          'json' in instruction.paths
            ? instruction.paths.json.map((p) => this.word(state, instruction, p))
            : this.expand(instruction, () =>
                processWords(
                  (instruction.paths as { text: string }).text,
                  this.lookup(state),
                  this.dockerfile.escape,
                ),
              );
        const volumes = { ...(config.Volumes ?? {}) };
        for (const path of paths) {
          if (path.trim() === '')
            throw atPosition(
              this.dockerfile.file,
              instruction.raw.line,
              instruction.raw.restColumn,
              invalidArgument('VOLUME specified can not be an empty string'),
            );
          volumes[path] = {};
        }
        config.Volumes = volumes;
        text = `VOLUME ${goQuoted(paths).replace(/"/g, '')}`;
        break;
      }
      case 'HEALTHCHECK': {
        if (instruction.test === undefined) config.Healthcheck = { Test: ['NONE'] };
        else {
          const test =
            'json' in instruction.test
              ? ['CMD', ...instruction.test.json]
              : ['CMD-SHELL', instruction.test.shell];
          const health: HealthConfig = { Test: test };
          const flag = (name: string): string | undefined => instruction.flags.get(name)?.[0];
          for (const [name, field] of [
            ['interval', 'Interval'],
            ['timeout', 'Timeout'],
            ['start-period', 'StartPeriod'],
            ['start-interval', 'StartInterval'],
          ] as const) {
            const value = flag(name);
            if (value !== undefined)
              (health as Record<string, unknown>)[field] = this.expand(instruction, () =>
                durationNs(name, value),
              );
          }
          const retries = flag('retries');
          if (retries !== undefined) {
            if (!/^\d+$/.test(retries))
              throw atPosition(
                this.dockerfile.file,
                instruction.raw.line,
                instruction.raw.column,
                invalidArgument(`invalid value for --retries: ${retries}`),
              );
            health.Retries = Number(retries);
          }
          config.Healthcheck = health;
        }
        text = healthcheckHistoryText(config.Healthcheck);
        break;
      }
      case 'ONBUILD':
        config.OnBuild = [...(config.OnBuild ?? []), instruction.trigger];
        text = `ONBUILD ${instruction.trigger}`;
        break;
      default:
        throw invalidArgument(`unexpected instruction ${instruction.kind}`);
    }
    const createdBy = nopCreatedBy(config.Shell, text);
    await this.withCache(state, createdBy, [], say, () => this.commit(state, createdBy, undefined, config));
  }

  private async arg(
    state: State,
    instruction: InstructionOf<'ARG'>,
    say: (text: string) => void,
  ): Promise<void> {
    const parts: string[] = [];
    for (const { name, value } of instruction.args) {
      this.consumedArgs.add(name);
      const fallback = value === undefined ? this.globalArgs.get(name) : this.word(state, instruction, value);
      const effective = this.buildArgs.get(name) ?? fallback;
      if (effective !== undefined) state.args.set(name, effective);
      else state.args.delete(name);
      parts.push(value === undefined ? name : `${name}=${value}`);
    }
    const createdBy = nopCreatedBy(state.config.Shell, `ARG ${parts.join(' ')}`);
    // The values a RUN sees are in its own history text; the ARG step only changes the history.
    await this.withCache(state, createdBy, [], say, () => this.commit(state, createdBy));
  }

  private async workdir(
    state: State,
    instruction: { raw: Instruction['raw']; text: string },
    say: (text: string) => void,
  ): Promise<void> {
    const path = this.word(state, instruction, instruction.text);
    const config = cloneConfig(state.config);
    config.WorkingDir = posix.resolve(config.WorkingDir || '/', path);
    const createdBy = nopStringCreatedBy(config.Shell, `WORKDIR ${config.WorkingDir}`);
    await this.withCache(state, createdBy, [], say, async () => {
      // Like the classic builder, a missing directory is created (owned by root) in a layer.
      const key = `build-${randomId().slice(0, 24)}`;
      const parentChain = state.image ? chainIdsOf(state.image.config.rootfs.diff_ids).at(-1) : undefined;
      await this.deps.snapshotter.prepare(key, parentChain);
      let used = false;
      try {
        const target = await this.deps.snapshotter.layerTarget(key);
        const view = new DestinationView(target.root, target.lowers);
        let stream: AsyncGenerator<Buffer> | undefined;
        try {
          const components = await view.resolve(config.WorkingDir as string);
          if ((await view.kind(components)) === undefined)
            stream = await copyStream(view, [], {
              dest: `${config.WorkingDir}/`,
              workdir: '/',
              now: Math.floor(Date.now() / 1000),
              instruction: 'WORKDIR',
            });
        } finally {
          await view.close();
        }
        if (stream === undefined) return await this.commit(state, createdBy, undefined, config);
        await applyTar(stream, target.root, { mode: 'overlay', lowers: target.lowers });
        used = true;
        return await this.commit(
          state,
          createdBy,
          { stream: diffOverlayUpper(target.root), snapshotKey: key },
          config,
        );
      } finally {
        if (!used) await this.deps.snapshotter.remove(key).catch(() => undefined);
      }
    });
  }

  /** An image or stage's root filesystem, mounted read-only for COPY --from and bind mounts. */
  private async mountedRoot(
    name: string,
    stageIndex: number,
  ): Promise<{ root: string; release: () => Promise<void> }> {
    const dependency = this.stageByName(name);
    let image: ImageDocuments | undefined;
    if (dependency && dependency.index < stageIndex) image = (await this.stageResult(dependency)).state.image;
    else if (dependency) throw invalidArgument(`stage ${name} cannot be used before it is defined`);
    else if (name.toLowerCase() !== 'scratch') image = (await this.baseImage(name)).documents;
    const root = this.tempDir('root');
    await mkdir(root, { recursive: true });
    const top = image ? chainIdsOf(image.config.rootfs.diff_ids).at(-1) : undefined;
    if (top === undefined) return { root, release: async () => undefined };
    const key = `build-view-${randomId().slice(0, 20)}`;
    const mounts = await this.deps.snapshotter.view(key, top);
    try {
      await mountAll(mounts, root);
    } catch (err) {
      await this.deps.snapshotter.remove(key).catch(() => undefined);
      throw err;
    }
    return {
      root,
      release: async () => {
        await unmount(root).catch(() => undefined);
        await this.deps.snapshotter.remove(key).catch(() => undefined);
      },
    };
  }

  /** The stage a state belongs to: --from may only name stages before it. */
  private stageIndexOf(state: State): number {
    return this.currentStage.get(state) ?? this.dockerfile.stages.length;
  }

  private async copyInstruction(
    state: State,
    instruction: InstructionOf<'COPY' | 'ADD'>,
    say: (text: string) => void,
  ): Promise<void> {
    const keyword = instruction.kind;
    for (const unsupported of ['parents', 'exclude', 'checksum', 'keep-git-dir'])
      if (instruction.flags.has(unsupported))
        throw atPosition(
          this.dockerfile.file,
          instruction.raw.line,
          instruction.raw.column,
          invalidArgument(`${keyword} --${unsupported} is not supported by berth`),
        );
    const flag = (name: string): string | undefined => {
      const value = instruction.flags.get(name)?.[0];
      return value === undefined ? undefined : this.word(state, instruction, value);
    };
    const from = flag('from');
    const chown = flag('chown');
    const chmodText = flag('chmod');
    const chmod = chmodText === undefined ? undefined : this.expand(instruction, () => parseChmod(chmodText));
    if (from !== undefined && keyword === 'ADD')
      throw atPosition(
        this.dockerfile.file,
        instruction.raw.line,
        instruction.raw.column,
        invalidArgument('ADD does not take --from; use COPY --from'),
      );
    const dest = this.word(state, instruction, instruction.dest);
    const workdir = state.config.WorkingDir ?? '/';
    const releases: Array<() => Promise<void>> = [];
    try {
      const root =
        from === undefined
          ? { root: this.request.contextDir, what: 'build context' }
          : await (async () => {
              const mounted = await this.mountedRoot(from, this.stageIndexOf(state));
              releases.push(mounted.release);
              return { root: mounted.root, what: `${from}` };
            })();
      // The context's sums are kept for the whole build; an image's for this instruction.
      const hasher =
        from === undefined ? this.contextHasher : new SourceHasher(root.root, 'filesystem', this.owners);
      const sources: CopySource[] = [];
      const hashes: string[] = [];
      const heredocs = new Map(instruction.heredocs.map((h) => [h.name, h]));
      for (const raw of instruction.sources) {
        const heredoc = heredocs.size > 0 ? heredocWord(raw) : undefined;
        const doc = heredoc ? heredocs.get(heredoc.name) : undefined;
        if (doc) {
          const content = doc.expand
            ? this.expand(instruction, () =>
                expandHeredoc(doc.content, this.lookup(state), this.dockerfile.escape),
              )
            : doc.content;
          sources.push(contentSource(doc.name, content));
          hashes.push(`file:${contentSum(doc.name, Buffer.from(content))}`);
          continue;
        }
        const pattern = this.word(state, instruction, raw);
        if (keyword === 'ADD' && isUrl(pattern)) {
          const downloaded = await download(pattern, this.tempDir('download'), this.controller.signal);
          sources.push(downloaded);
          // dockerd's hash of a download carries no "file:" prefix.
          hashes.push(
            await downloadSum(
              (downloaded as { hostPath: string }).hostPath,
              downloadName(pattern),
              this.owners,
            ),
          );
          continue;
        }
        const matched = await this.expand(instruction, () =>
          matchSources(root.root, pattern, root.what),
        ).catch((err: unknown) => {
          throw atPosition(this.dockerfile.file, instruction.raw.line, instruction.raw.restColumn, err);
        });
        for (const source of matched) {
          if (source.kind !== 'path') continue;
          // An ADDed archive is hashed as the "file" it is, although its content is a tree.
          hashes.push(await hasher.source(source.name));
          if (keyword === 'ADD' && !source.isDir) {
            const extracted = await extractIfArchive(source.hostPath, source.name, this.tempDir('extract'));
            if (extracted) {
              sources.push(extracted);
              continue;
            }
          }
          sources.push(source);
        }
      }
      const createdBy = nopStringCreatedBy(
        state.config.Shell,
        copyHistoryText(keyword, { chown, chmod: chmodText }, sourcesHash(hashes), dest),
      );
      await this.withCache(state, createdBy, [workdir], say, () =>
        this.layerStep(state, createdBy, state.config, async (_key, upper, lowers) => {
          const view = new DestinationView(upper, lowers);
          let stream: AsyncGenerator<Buffer>;
          try {
            const owner =
              chown === undefined
                ? undefined
                : await this.expand(instruction, () => view.owner(chown)).catch((err: unknown) => {
                    throw atPosition(this.dockerfile.file, instruction.raw.line, instruction.raw.column, err);
                  });
            stream = await copyStream(view, sources, {
              dest,
              workdir,
              ...(owner ? { owner } : {}),
              ...(chmod !== undefined ? { chmod } : {}),
              now: Math.floor(Date.now() / 1000),
              instruction: keyword,
            }).catch((err: unknown) => {
              throw atPosition(this.dockerfile.file, instruction.raw.line, instruction.raw.restColumn, err);
            });
          } finally {
            await view.close();
          }
          await applyTar(stream, upper, { mode: 'overlay', lowers, allowDevices: false });
        }),
      );
    } finally {
      for (const release of releases) await release();
    }
  }

  private async runMounts(
    state: State,
    specs: MountSpec[],
    stageIndex: number,
    releases: Array<() => Promise<void>>,
    command: string,
  ): Promise<OciMount[]> {
    const mounts: OciMount[] = [];
    for (const spec of specs) {
      switch (spec.type) {
        case 'cache': {
          // BuildKit's description of a cache mount record.
          const dir = this.deps.cache.useMount(spec.id, `cached mount ${spec.target} from exec ${command}`);
          this.use(basename(dir));
          const fresh = await stat(dir).then(
            () => false,
            () => true,
          );
          if (fresh) {
            await mkdir(dir, { recursive: true });
            await chmod(dir, spec.mode);
            await chown(dir, spec.uid, spec.gid);
          }
          mounts.push({
            destination: spec.target,
            type: 'bind',
            source: dir,
            options: ['rbind', spec.readonly ? 'ro' : 'rw'],
          });
          break;
        }
        case 'bind': {
          if (spec.readwrite)
            throw invalidArgument(
              'RUN --mount=type=bind,rw is not supported by berth (bind mounts are read-only)',
            );
          let root = this.request.contextDir;
          if (spec.from !== undefined) {
            const mounted = await this.mountedRoot(spec.from, stageIndex);
            releases.push(mounted.release);
            root = mounted.root;
          }
          const source = await resolveInTree(root, spec.source.split('/'));
          await stat(source).catch(() => {
            throw invalidArgument(
              `RUN --mount=type=bind: source ${spec.source} does not exist in ${spec.from ?? 'the build context'}`,
            );
          });
          mounts.push({ destination: spec.target, type: 'bind', source, options: ['rbind', 'ro'] });
          break;
        }
        case 'tmpfs':
          mounts.push({
            destination: spec.target,
            type: 'tmpfs',
            source: 'tmpfs',
            options: ['nosuid', 'nodev', ...(spec.size !== undefined ? [`size=${spec.size}`] : [])],
          });
          break;
        case 'secret': {
          const value = this.request.secrets?.get(spec.id);
          if (value === undefined) {
            if (spec.required)
              throw invalidArgument(
                `secret ${spec.id} not found: give it with --secret id=${spec.id},src=<file>`,
              );
            break;
          }
          const dir = this.tempDir('secret');
          await mkdir(dir, { recursive: true, mode: 0o700 });
          const file = join(dir, 'value');
          await writeFile(file, value, { mode: spec.mode });
          await chmod(file, spec.mode);
          await chown(file, spec.uid, spec.gid);
          mounts.push({ destination: spec.target, type: 'bind', source: file, options: ['rbind', 'ro'] });
          break;
        }
      }
    }
    void state;
    return mounts;
  }

  private async runInstruction(
    state: State,
    instruction: InstructionOf<'RUN'>,
    say: (text: string) => void,
  ): Promise<void> {
    const shell = state.config.Shell ?? DEFAULT_SHELL;
    let args: string[];
    if (instruction.heredocs.length > 0 && 'shell' in instruction.command) {
      const first = instruction.heredocs[0] as { name: string; content: string };
      const only = heredocWord(instruction.command.shell.trim());
      // `RUN <<EOF` alone runs the body as the script; anything else goes to the shell whole.
      args =
        only !== undefined && instruction.heredocs.length === 1
          ? [...shell, first.content]
          : [
              ...shell,
              [instruction.command.shell, ...instruction.heredocs.map((h) => `${h.content}${h.name}`)].join(
                '\n',
              ),
            ];
    } else
      args = 'json' in instruction.command ? instruction.command.json : [...shell, instruction.command.shell];
    const buildArgs = this.runArgs(state);
    const prefix =
      buildArgs.length > 0 ? `|${buildArgs.length} ${buildArgs.map(([k, v]) => `${k}=${v}`).join(' ')} ` : '';
    const createdBy = `${prefix}${args.join(' ')}`;
    const workdir = state.config.WorkingDir || '/';
    const mountTexts = (instruction.flags.get('mount') ?? []).map((m) => this.word(state, instruction, m));
    const specs = mountTexts.map((m) => this.expand(instruction, () => parseMount(m, workdir)));
    const networkFlag = instruction.flags.get('network')?.[0];
    const network =
      networkFlag === undefined
        ? (this.request.network ?? 'default')
        : this.word(state, instruction, networkFlag);
    if (network !== 'none' && network !== 'host' && network !== 'default')
      throw atPosition(
        this.dockerfile.file,
        instruction.raw.line,
        instruction.raw.column,
        invalidArgument(`RUN --network=${network} is not supported: use none or host`),
      );
    if (instruction.flags.has('security'))
      throw atPosition(
        this.dockerfile.file,
        instruction.raw.line,
        instruction.raw.column,
        invalidArgument('RUN --security is not supported by berth'),
      );
    const effectiveNetwork: RunNetwork = network;
    const env = [...(state.config.Env ?? [])];
    const envNames = new Set(env.map((e) => e.split('=')[0]));
    if (!envNames.has('PATH')) env.unshift(DEFAULT_PATH);
    for (const [name, value] of buildArgs) env.push(`${name}=${value}`);
    for (const name of PROXY_ARGS) {
      const value = this.buildArgs.get(name);
      if (value !== undefined && !envNames.has(name) && !state.args.has(name)) env.push(`${name}=${value}`);
    }
    const stageIndex = this.stageIndexOf(state);
    await this.withCache(state, createdBy, [...mountTexts, effectiveNetwork], say, () =>
      this.layerStep(state, createdBy, state.config, async (key) => {
        const id = randomId();
        say(` ---> Running in ${id.slice(0, 12)}\n`);
        const releases: Array<() => Promise<void>> = [];
        let code: number;
        try {
          const mounts = await this.runMounts(state, specs, stageIndex, releases, args.join(' '));
          const stepDir = this.tempDir('run');
          await mkdir(stepDir, { recursive: true });
          code = await runStep({
            runtime: this.deps.runtime,
            snapshotter: this.deps.snapshotter,
            snapshotKey: key,
            workDir: stepDir,
            id,
            args,
            env,
            cwd: workdir,
            user: state.config.User ?? '',
            network: effectiveNetwork,
            volumes: Object.keys(state.config.Volumes ?? {}),
            ...(this.deps.bridge ? { bridge: this.deps.bridge } : {}),
            mounts,
            ...(this.request.cgroupParent ? { cgroupParent: this.request.cgroupParent } : {}),
            records: new StepRecords(join(this.deps.tempRoot, STEP_RECORDS)),
            output: (chunk) => say(chunk.toString('utf8')),
            signal: this.controller.signal,
          });
        } finally {
          for (const release of releases) await release();
        }
        say(`Removing intermediate container ${id.slice(0, 12)}\n`);
        if (code !== 0)
          throw new StepFailedError(
            `The command '${args.join(' ')}' returned a non-zero code: ${code}`,
            code,
          );
      }),
    );
  }
}
