/**
 * Issue 7's acceptance: the same Dockerfile built by berthd and by dockerd (docker CLI, classic
 * builder) gives images with the same filesystem and the same config. Both images are saved,
 * their layers flattened in order (whiteouts and opaque directories applied), and the results
 * compared path by path (type, mode, owner, size, content hash, link target, xattrs; not mtimes),
 * then the config fields, the history and the layer count. --quick builds with berthd only and
 * runs the image.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ByteSource } from '../src/archive/byte-source.js';
import { openLayerStream } from '../src/archive/layer-format.js';
import { readTar } from '../src/archive/tar-reader.js';
import { tarArchive } from '../src/archive/tar-writer.js';
import type { Engine } from './lib/references.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from './lib/scenario.js';

function dockerfile(image: string): string {
  return [
    `ARG BASE=${image}`,
    'FROM ${BASE} AS builder',
    'ARG GREETING=hello',
    'ENV BUILD_DIR=/build',
    'WORKDIR $BUILD_DIR',
    'COPY src/ ./src/',
    'RUN mkdir -p out/nested && cat src/*.txt > out/all.txt && echo "$GREETING" > out/greeting \\',
    '    && ln -s all.txt out/link && chmod 0640 out/greeting && echo deep > out/nested/deep',
    'RUN touch out/tmp1 && rm out/tmp1 && mkdir out/empty',
    '',
    'FROM ${BASE}',
    'ARG VERSION=1.0',
    'LABEL org.example.version=$VERSION org.example.name="parity test"',
    'ENV APP_HOME=/app PATH=/app/bin:$PATH',
    'ENV LANG C.UTF-8',
    'WORKDIR /app',
    'COPY --from=builder /build/out/ /app/out/',
    'COPY --from=builder /build/out/all.txt /app/single',
    'COPY *.conf /app/conf/',
    'COPY dir* /app/dirs/',
    'COPY --chown=1000:1000 data /app/data',
    // No --chmod: Docker's classic builder refuses it ("the --chmod option requires BuildKit").
    'COPY scripts/run.sh /app/bin/',
    'COPY --chown=123:456 secret.txt /app/secret.txt',
    'COPY . /app/context/',
    'ADD archive.tar /app/extracted/',
    'ADD archive.tar.gz /app/extracted-gz',
    'ADD plain.txt /app/plain-added.txt',
    // Whiteouts of files and directories from lower layers, an opaque directory, a hardlink,
    // a setuid file and a fifo.
    'RUN rm /app/conf/b.conf && rm -r /app/data/sub /app/extracted/dir1 \\',
    '    && rm -rf /app/out && mkdir /app/out && echo new > /app/out/new \\',
    '    && echo created > /app/created && ln /app/created /app/created-hard \\',
    '    && cp /bin/busybox /app/suid && chmod 4755 /app/suid && mkfifo /app/fifo && chmod 0600 /app/secret.txt',
    'RUN mkdir -p /var/lib/app && chown -R 1001:1001 /var/lib/app',
    'EXPOSE 8080 53/udp',
    'VOLUME ["/data", "/var/log/app"]',
    'VOLUME /cache',
    'USER 1001:1001',
    'STOPSIGNAL SIGTERM',
    'HEALTHCHECK --interval=30s --timeout=5s --start-period=2s --retries=3 CMD ["/bin/true"]',
    'SHELL ["/bin/sh", "-ec"]',
    'RUN echo "$APP_HOME" > /tmp/shell-form',
    'ONBUILD RUN echo onbuild',
    'ENTRYPOINT ["/app/bin/run.sh"]',
    'CMD ["--serve"]',
    '',
  ].join('\n');
}

const DOCKERIGNORE = [
  '# comments are skipped',
  '*.log',
  '!keep.log',
  'ignored/',
  '**/*.tmp',
  'Dockerfile',
  '',
].join('\n');

async function writeContext(dir: string, image: string): Promise<void> {
  const files: Record<string, string | Buffer> = {
    Dockerfile: dockerfile(image),
    '.dockerignore': DOCKERIGNORE,
    'src/a.txt': 'a\n',
    'src/b.txt': 'b\n',
    'a.conf': 'a=1\n',
    'b.conf': 'b=2\n',
    'dir1/one': 'one\n',
    'dir2/two': 'two\n',
    'dir2/sub/three': 'three\n',
    'data/top': 'top\n',
    'data/sub/inner': 'inner\n',
    'data/x.tmp': 'ignored by **/*.tmp\n',
    'data/sub/y.tmp': 'ignored by **/*.tmp\n',

    'secret.txt': 'secret\n',
    'plain.txt': 'plain text, not an archive\n',
    'debug.log': 'ignored\n',
    'keep.log': 'kept by the negation\n',
    'ignored/file': 'ignored\n',
  };
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  // COPY keeps the context file's mode: the entrypoint is executable without --chmod.
  await mkdir(join(dir, 'scripts'), { recursive: true });
  await writeFile(join(dir, 'scripts/run.sh'), '#!/bin/sh\necho "parity ok $*"\n', { mode: 0o755 });
  // An archive with its own owners and modes (ADD keeps them) and a directory the RUN removes.
  const archive = tarArchive([
    { path: 'dir1/', type: 'directory', mode: 0o750, uid: 1000, gid: 1000, mtime: 1_600_000_000 },
    { path: 'dir1/f', type: 'file', mode: 0o644, uid: 1000, gid: 1000, content: Buffer.from('f\n') },
    { path: 'dir2/', type: 'directory', mode: 0o755, uid: 0, gid: 0 },
    { path: 'dir2/exe', type: 'file', mode: 0o711, uid: 2, gid: 3, content: Buffer.from('exe\n') },
    { path: 'dir2/sym', type: 'symlink', mode: 0o777, linkTarget: 'exe' },
    { path: 'top.txt', type: 'file', mode: 0o600, uid: 0, gid: 0, content: Buffer.from('top\n') },
  ]);
  await writeFile(join(dir, 'archive.tar'), archive);
  await writeFile(join(dir, 'archive.tar.gz'), gzipSync(archive));
}

/** One path of a flattened image. */
interface FsEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  sha256?: string;
  link?: string;
  xattrs?: string;
}

interface SavedImage {
  config: Record<string, unknown>;
  layers: number;
  fs: Map<string, FsEntry>;
}

async function* bytes(buffer: Buffer): AsyncGenerator<Buffer> {
  yield buffer;
}

async function collect(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const clean = (path: string): string => `/${path.replace(/^\.?\/+/, '').replace(/\/+$/, '')}`;

function removeTree(fs: Map<string, FsEntry>, path: string, keepSelf: boolean): void {
  for (const key of [...fs.keys()]) {
    if (key.startsWith(`${path}/`) || (!keepSelf && key === path)) fs.delete(key);
  }
}

/** Apply one layer onto `fs`: whiteouts remove what lower layers hold, the rest replaces. */
async function applyLayer(fs: Map<string, FsEntry>, layer: Buffer): Promise<void> {
  const stream = await openLayerStream(bytes(layer));
  const added = new Map<string, FsEntry>();
  for await (const { header, body } of readTar(stream.source)) {
    const path = clean(header.path);
    const slash = path.lastIndexOf('/');
    const dir = path.slice(0, slash) || '/';
    const base = path.slice(slash + 1);
    if (base === '.wh..wh..opq') {
      removeTree(fs, dir === '/' ? '' : dir, true);
      continue;
    }
    if (base.startsWith('.wh.')) {
      removeTree(fs, `${dir === '/' ? '' : dir}/${base.slice(4)}`, false);
      continue;
    }
    const xattrs = [...header.xattrs.entries()]
      .map(([key, value]) => `${key}=${value.toString('base64')}`)
      .sort()
      .join(',');
    const entry: FsEntry = {
      type: header.type,
      mode: header.mode & 0o7777,
      uid: header.uid,
      gid: header.gid,
      size: header.size,
      ...(xattrs ? { xattrs } : {}),
    };
    if (header.type === 'file')
      entry.sha256 = createHash('sha256')
        .update(await collect(body))
        .digest('hex');
    if (header.type === 'symlink') entry.link = header.linkTarget;
    if (header.type === 'hardlink') {
      // Which name of a hardlinked file the tar holds first is arbitrary: compare the file itself.
      const target = added.get(clean(header.linkTarget)) ?? fs.get(clean(header.linkTarget));
      if (target) Object.assign(entry, target);
      else entry.link = header.linkTarget;
    }
    added.set(path, entry);
  }
  // A directory replacing a file (or the reverse) replaces everything under the old path.
  for (const [path, entry] of added) {
    const old = fs.get(path);
    if (old && old.type === 'directory' && entry.type !== 'directory') removeTree(fs, path, true);
    fs.set(path, entry);
  }
}

/** `docker save` output (classic or OCI layout): the image config and its flattened layers. */
async function readSaved(file: string): Promise<SavedImage> {
  const members = new Map<string, Buffer>();
  for await (const { header, body } of readTar(new ByteSource(createReadStream(file)))) {
    if (header.type === 'file') members.set(clean(header.path), await collect(body));
  }
  const member = (path: string): Buffer => {
    const data = members.get(clean(path));
    if (!data) throw new Error(`${file}: no ${path} in the saved image`);
    return data;
  };
  const manifest = JSON.parse(member('manifest.json').toString()) as { Config: string; Layers: string[] }[];
  const first = manifest[0];
  if (!first) throw new Error(`${file}: manifest.json lists no image`);
  const config = JSON.parse(member(first.Config).toString()) as Record<string, unknown>;
  const fs = new Map<string, FsEntry>();
  for (const layer of first.Layers) await applyLayer(fs, member(layer));
  return { config, layers: first.Layers.length, fs };
}

const CONFIG_FIELDS = [
  'Cmd',
  'Entrypoint',
  'Env',
  'WorkingDir',
  'User',
  'ExposedPorts',
  'Volumes',
  'Labels',
  'StopSignal',
  'Healthcheck',
  'Shell',
  'OnBuild',
] as const;

/** JSON with object keys sorted; null and absent are the same (Go's omitempty vs a null). */
function canonical(value: unknown): string {
  if (value === null || value === undefined) return 'absent';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function describe(entry: FsEntry | undefined): string {
  if (!entry) return 'absent';
  const parts = [entry.type, `mode ${entry.mode.toString(8)}`, `${entry.uid}:${entry.gid}`];
  if (entry.type === 'file') parts.push(`${entry.size} bytes`, `sha256 ${entry.sha256?.slice(0, 12)}`);
  if (entry.link !== undefined) parts.push(`-> ${entry.link}`);
  if (entry.xattrs) parts.push(`xattrs ${entry.xattrs}`);
  return parts.join(', ');
}

/** Every difference between the image berthd built and the one dockerd built, as sentences. */
function compare(berth: SavedImage, docker: SavedImage): string[] {
  const differences: string[] = [];
  const paths = [...new Set([...berth.fs.keys(), ...docker.fs.keys()])].sort();
  for (const path of paths) {
    const a = describe(berth.fs.get(path));
    const b = describe(docker.fs.get(path));
    if (a !== b) differences.push(`filesystem ${path}: berth ${a}; docker ${b}`);
  }
  const configOf = (image: SavedImage): Record<string, unknown> =>
    (image.config.config ?? {}) as Record<string, unknown>;
  for (const field of CONFIG_FIELDS) {
    const a = canonical(configOf(berth)[field]);
    const b = canonical(configOf(docker)[field]);
    if (a !== b) differences.push(`config ${field}: berth ${a}; docker ${b}`);
  }
  const history = (image: SavedImage): string[] =>
    ((image.config.history ?? []) as { created_by?: string; empty_layer?: boolean }[]).map(
      (h) => `${h.empty_layer === true ? 'empty' : 'layer'} ${h.created_by ?? ''}`,
    );
  const ha = history(berth);
  const hb = history(docker);
  for (let i = 0; i < Math.max(ha.length, hb.length); i++) {
    if (ha[i] !== hb[i])
      differences.push(`history[${i}]: berth ${ha[i] ?? 'absent'}; docker ${hb[i] ?? 'absent'}`);
  }
  if (berth.layers !== docker.layers)
    differences.push(`layer count: berth ${berth.layers}; docker ${docker.layers}`);
  return differences;
}

async function buildAndSave(engine: Engine, dir: string, tag: string, file: string): Promise<SavedImage> {
  await engine.ok(['build', '-t', tag, dir], { env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 300_000 });
  await engine.ok(['save', '-o', file, tag], { timeoutMs: 120_000 });
  return readSaved(file);
}

const GOAL =
  'the same Dockerfile built by berth and by Docker gives the same filesystem content and the same config fields, history and layer count (7)';

async function buildParity(options: ScenarioOptions): Promise<ScenarioResult> {
  const { berthdDocker, dockerd } = options.engines;
  const dir = join(options.workDir, 'context');
  await writeContext(dir, berthdDocker.image);
  const tag = `bench-build-parity-${process.pid}:latest`;
  const engines = [berthdDocker, ...(dockerd ? [dockerd] : [])];
  try {
    const berth = await buildAndSave(berthdDocker, dir, tag, join(options.workDir, 'berth.tar'));
    const run = await berthdDocker.ok(['run', '--rm', '--network', 'none', tag], { timeoutMs: 60_000 });
    const runs = run.trim() === 'parity ok --serve';
    const figures: Record<string, number> = { 'paths in berth’s image': berth.fs.size };
    const notes = [
      `The image built by berthd ${runs ? 'runs' : `does not run as expected (printed ${JSON.stringify(run.trim())})`}.`,
    ];
    if (!dockerd || options.quick)
      return { name: 'build-parity', goal: GOAL, contenders: [], ratios: {}, figures, notes };
    const docker = await buildAndSave(dockerd, dir, tag, join(options.workDir, 'docker.tar'));
    const differences = compare(berth, docker);
    figures['paths in docker’s image'] = docker.fs.size;
    figures.differences = differences.length;
    notes.push(
      differences.length === 0
        ? 'Filesystems, config fields, history and layer count are identical.'
        : `${differences.length} differences (berth first, then docker):`,
      ...differences.map((d) => `- ${d}`),
    );
    return {
      name: 'build-parity',
      goal: GOAL,
      met: runs && differences.length === 0,
      contenders: [],
      ratios: {},
      figures,
      notes,
    };
  } finally {
    for (const engine of engines) await engine.cli(['rmi', '-f', tag]);
  }
}

export const buildParityScenario: Scenario = { name: 'build-parity', run: buildParity };
