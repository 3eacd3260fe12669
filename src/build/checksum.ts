/**
 * The source hashes of COPY and ADD, computed as dockerd's classic builder does, because they
 * are part of the history text (`COPY dir:<hex> in /app/ `) and so of the build cache key: an
 * image built by Docker then matches ours, and `docker history` reads the same.
 *
 * Each path's sum is a tarsum (version 1, sha256) of a tar header and the file's content: the
 * header fields name, mode, uid, gid, size, typeflag, linkname, uname, gname, devmajor and
 * devminor, each written as its key followed by its decimal or text value, no separators (the
 * modification time is left out). A source file's hash is `file:<sum>`, a directory's
 * `dir:<sha256 of its paths' sums, sorted, joined with ','>` (the directory itself counts, the
 * context root does not), several sources' `multi:<sha256 of their hashes joined with ','>`.
 * A path is hashed as what it names after following symlinks inside the tree; a dangling
 * symlink contributes its path instead of a sum.
 *
 * The headers differ with the tree, as they do in dockerd:
 * - the build context: the header the docker CLI sent (uid and gid 0, permission bits without
 *   the file-type bits, a second name of a hardlinked file as a link to the first name in the
 *   CLI's walk order); dockerd blanks uname and gname. We rebuild it from the unpacked context.
 * - an image or stage (COPY --from) or a downloaded file: a header made from the file on disk
 *   (the file's owner, mode with the file-type bits, uname and gname looked up in the host's
 *   /etc/passwd and /etc/group as Go's os/user does; hardlinks are plain files).
 * Not reproduced: the `security.capability` xattr, which dockerd adds to the header when the
 * file (or the CLI's copy of it) has one; Node.js cannot read xattrs.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readFile, readdir, stat as statFollow } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { errnoCode } from '../common/errors.js';
import { resolveInTree } from './copy.js';

/** The header fields a tarsum covers, in its order. */
export interface TarsumHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

/** A sha256 primed with a version-1 tarsum header; the file's content follows. */
export function tarsumHash(header: TarsumHeader): Hash {
  const hash = createHash('sha256');
  const fields: Array<[string, string | number]> = [
    ['name', header.name],
    ['mode', header.mode],
    ['uid', header.uid],
    ['gid', header.gid],
    ['size', header.size],
    ['typeflag', header.typeflag],
    ['linkname', header.linkname],
    ['uname', header.uname],
    ['gname', header.gname],
    ['devmajor', header.devmajor],
    ['devminor', header.devminor],
  ];
  for (const [key, value] of fields) hash.update(`${key}${value}`);
  return hash;
}

/** `prefix:` and the sha256 of `parts` joined with ',' (dockerd's hashStringSlice). */
export function hashList(prefix: 'dir' | 'multi', parts: string[]): string {
  return `${prefix}:${createHash('sha256').update(parts.join(',')).digest('hex')}`;
}

/** The hash of a COPY/ADD with several sources (each already `file:`, `dir:` or a URL's sum). */
export function sourcesHash(hashes: string[]): string {
  return hashes.length === 1 ? (hashes[0] as string) : hashList('multi', hashes);
}

/** Owner names as Go's os/user finds them: the first matching line of /etc/passwd and /etc/group. */
export class OwnerNames {
  private files: Promise<{ users: Map<number, string>; groups: Map<number, string> }> | undefined;

  constructor(
    private readonly passwd = '/etc/passwd',
    private readonly group = '/etc/group',
  ) {}

  async of(uid: number, gid: number): Promise<{ uname: string; gname: string }> {
    this.files ??= Promise.all([idNames(this.passwd), idNames(this.group)]).then(([users, groups]) => ({
      users,
      groups,
    }));
    const { users, groups } = await this.files;
    return { uname: users.get(uid) ?? '', gname: groups.get(gid) ?? '' };
  }
}

/** name:x:id:... lines as id -> first name. A missing file names nobody. */
async function idNames(file: string): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    const id = fields[2];
    if (fields[0] && id !== undefined && /^\d+$/.test(id) && !names.has(Number(id)))
      names.set(Number(id), fields[0]);
  }
  return names;
}

function typeflagOf(stat: Stats): string {
  if (stat.isFile()) return '0';
  if (stat.isDirectory()) return '5';
  if (stat.isSymbolicLink()) return '2';
  if (stat.isCharacterDevice()) return '3';
  if (stat.isBlockDevice()) return '4';
  return '6';
}

/** Linux's major() and minor() of a device number. */
const major = (dev: number): number =>
  Number(((BigInt(dev) >> 8n) & 0xfffn) | ((BigInt(dev) >> 32n) & ~0xfffn));
const minor = (dev: number): number => Number((BigInt(dev) & 0xffn) | ((BigInt(dev) >> 12n) & ~0xffn));

async function sumOf(header: TarsumHeader, hostPath: string, withContent: boolean): Promise<string> {
  const hash = tarsumHash(header);
  if (withContent) for await (const chunk of createReadStream(hostPath)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The sum of a heredoc source (the classic builder has none): a context file of that name and
 * content, mode 0644.
 */
export function contentSum(name: string, content: Buffer): string {
  const header = { name, mode: 0o644, uid: 0, gid: 0, size: content.length, typeflag: '0', linkname: '' };
  return tarsumHash({ ...header, uname: '', gname: '', devmajor: 0, devminor: 0 })
    .update(content)
    .digest('hex');
}

/**
 * The sum of a downloaded file (ADD <url>): dockerd stores it as `name` with mode 0600 in a
 * directory of its own and hashes it like a file of an image. The history has the bare sum.
 */
export async function downloadSum(hostPath: string, name: string, owners: OwnerNames): Promise<string> {
  const stat = await lstat(hostPath);
  return sumOf(
    {
      name,
      mode: 0o100600,
      uid: stat.uid,
      gid: stat.gid,
      size: stat.size,
      typeflag: '0',
      linkname: '',
      ...(await owners.of(stat.uid, stat.gid)),
      devmajor: 0,
      devminor: 0,
    },
    hostPath,
    true,
  );
}

/** The name dockerd gives a download: the URL path's last segment, or `__unnamed__`. */
export function downloadName(url: string): string {
  const path = new URL(url).pathname;
  if (path === '' || path.endsWith('/')) return '__unnamed__';
  const last = path.slice(path.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/** Go's filepath.Walk order: names compared as UTF-8 bytes. */
const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** The source hashes of one tree: the build context or the root filesystem of an image or stage. */
export class SourceHasher {
  private readonly sums = new Map<string, Promise<string>>();
  /** Context only: each hardlinked inode's first path in the CLI's walk order. */
  private firstNames: Promise<Map<string, string>> | undefined;

  constructor(
    private readonly root: string,
    private readonly tree: 'context' | 'filesystem',
    private readonly owners: OwnerNames = new OwnerNames(),
  ) {}

  /** `file:<sum>` or `dir:<hex>` of a source path (relative to the root, '/'-separated). */
  async source(path: string): Promise<string> {
    const resolved = await this.resolve(path);
    const stat = await statFollow(join(this.root, resolved));
    if (!stat.isDirectory()) return `file:${await this.pathSum(path)}`;
    const sums: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      // Like dockerd, a path whose sum fails (a symlink loop) is left out.
      if (rel !== '.')
        sums.push(
          ...(await this.pathSum(rel).then(
            (sum) => [sum],
            () => [],
          )),
        );
      const host = join(this.root, rel);
      if (!(await lstat(host)).isDirectory()) return;
      for (const name of (await readdir(host)).sort(byBytes))
        await walk(rel === '.' ? name : `${rel}/${name}`);
    };
    await walk(resolved);
    return hashList('dir', sums.sort());
  }

  /** dockerd's Source.Hash: the sum of what `path` names, symlinks followed inside the tree. */
  private async pathSum(path: string): Promise<string> {
    const resolved = await this.resolve(path);
    let stat: Stats;
    try {
      stat = await lstat(join(this.root, resolved));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err;
      // A dangling symlink: the context's hash is the path asked for, an image's the resolved one.
      return this.tree === 'context' ? path : resolved;
    }
    // The context tar has no entry for its root.
    if (this.tree === 'context' && resolved === '.') return path;
    let pending = this.sums.get(resolved);
    if (pending === undefined) {
      pending =
        this.tree === 'context' ? this.contextSum(resolved, stat) : this.filesystemSum(resolved, stat);
      this.sums.set(resolved, pending);
    }
    return pending;
  }

  private async resolve(path: string): Promise<string> {
    const host = await resolveInTree(this.root, path.split('/'));
    return relative(this.root, host).split(sep).join('/') || '.';
  }

  private async contextSum(rel: string, stat: Stats): Promise<string> {
    const header: TarsumHeader = {
      name: stat.isDirectory() ? `${rel}/` : rel,
      mode: stat.mode & 0o7777,
      uid: 0,
      gid: 0,
      size: stat.isFile() ? stat.size : 0,
      typeflag: typeflagOf(stat),
      linkname: '',
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
    };
    if (stat.isFile() && stat.nlink > 1) {
      const first = (await this.hardlinkFirstNames()).get(`${stat.dev}:${stat.ino}`);
      if (first !== undefined && first !== rel)
        return sumOf({ ...header, typeflag: '1', linkname: first, size: 0 }, '', false);
    }
    return sumOf(header, join(this.root, rel), stat.isFile());
  }

  private async filesystemSum(rel: string, stat: Stats): Promise<string> {
    const header: TarsumHeader = {
      name: stat.isDirectory() ? `${rel}/` : rel,
      mode: stat.mode,
      uid: stat.uid,
      gid: stat.gid,
      size: stat.isFile() ? stat.size : 0,
      typeflag: typeflagOf(stat),
      linkname: '',
      ...(await this.owners.of(stat.uid, stat.gid)),
      devmajor: major(stat.rdev),
      devminor: minor(stat.rdev),
    };
    return sumOf(header, join(this.root, rel), stat.isFile() && stat.size > 0);
  }

  /** The docker CLI sends a hardlinked file's content under the first name its walk meets. */
  private hardlinkFirstNames(): Promise<Map<string, string>> {
    this.firstNames ??= (async () => {
      const first = new Map<string, string>();
      const walk = async (rel: string): Promise<void> => {
        const names = (await readdir(rel === '' ? this.root : join(this.root, rel))).sort(byBytes);
        for (const name of names) {
          const path = rel === '' ? name : `${rel}/${name}`;
          const stat = await lstat(join(this.root, path));
          if (stat.isDirectory()) await walk(path);
          else if (stat.isFile() && stat.nlink > 1 && !first.has(`${stat.dev}:${stat.ino}`))
            first.set(`${stat.dev}:${stat.ino}`, path);
        }
      };
      await walk('');
      return first;
    })();
    return this.firstNames;
  }
}
