/**
 * The container user, resolved the way Docker does (moby/sys/user GetExecUser and
 * GetAdditionalGroups) against /etc/passwd and /etc/group of the container's root filesystem.
 * The files are read without ever leaving the root filesystem: symlinks are followed inside it,
 * and the opened file is checked to lie below it.
 */
import { constants } from 'node:fs';
import { lstat, open, readlink, realpath } from 'node:fs/promises';
import { posix } from 'node:path';
import { errnoCode, invalidArgument } from '../common/errors.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** The primary gid first (as Docker does since 23.0), then supplementary groups, then GroupAdd. */
  additionalGids: number[];
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const MAX_ID = 2 ** 31 - 1;
const RANGE_ERROR = `uids and gids must be in range 0-${MAX_ID}`;
const MAX_FILE_SIZE = 16 * 1024 * 1024;
const MAX_SYMLINKS = 40;

/** Go's strconv.Atoi; NaN when the text is not a decimal integer. */
const atoi = (text: string): number => (/^[+-]?\d+$/.test(text) ? Number(text) : Number.NaN);
/** Go's parseLine: missing fields are empty, unparsable numbers are 0. */
const field = (fields: string[], i: number): string => fields[i] ?? '';
const numberField = (fields: string[], i: number): number => {
  const value = atoi(field(fields, i));
  return Number.isNaN(value) ? 0 : value;
};

function lines(text: string): string[][] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => line.split(':'));
}

export function parsePasswd(text: string): PasswdEntry[] {
  return lines(text).map((f) => ({ name: field(f, 0), uid: numberField(f, 2), gid: numberField(f, 3) }));
}

export function parseGroup(text: string): GroupEntry[] {
  return lines(text).map((f) => ({
    name: field(f, 0),
    gid: numberField(f, 2),
    members: field(f, 3) === '' ? [] : field(f, 3).split(','),
  }));
}

const checkRange = (id: number): number => {
  if (id < 0 || id > MAX_ID) throw invalidArgument(RANGE_ERROR);
  return id;
};

/**
 * Resolve `userSpec` ("", "name", "uid", "name:group", "uid:gid", ...) and `groupAdd` against the
 * contents of /etc/passwd and /etc/group (undefined when a file does not exist).
 */
export function resolveUserFromFiles(
  passwdText: string | undefined,
  groupText: string | undefined,
  userSpec: string,
  groupAdd: string[] = [],
): ResolvedUser {
  const [userArg = '', groupArg = ''] = userSpec.split(':');
  const uidArg = atoi(userArg);
  const gidArg = atoi(groupArg);
  const users = passwdText === undefined ? [] : parsePasswd(passwdText);
  const groups = groupText === undefined ? [] : parseGroup(groupText);

  let uid = 0;
  let gid = 0;
  let matchedName = '';
  const match = users.find((u) =>
    userArg === '' ? u.uid === 0 : Number.isNaN(uidArg) ? u.name === userArg : u.uid === uidArg,
  );
  if (match !== undefined) {
    matchedName = match.name;
    uid = match.uid;
    gid = match.gid;
  } else if (userArg !== '') {
    if (Number.isNaN(uidArg))
      throw invalidArgument(`unable to find user ${userArg}: no matching entries in passwd file`);
    uid = checkRange(uidArg);
  }

  let supplementary: number[] = [];
  if (groupArg !== '') {
    const group = groups.find((g) => (Number.isNaN(gidArg) ? g.name === groupArg : g.gid === gidArg));
    if (group !== undefined) gid = group.gid;
    else if (Number.isNaN(gidArg))
      throw invalidArgument(`unable to find group ${groupArg}: no matching entries in group file`);
    else gid = checkRange(gidArg);
  } else if (matchedName !== '') {
    supplementary = groups.filter((g) => g.members.includes(matchedName)).map((g) => g.gid);
  }

  const added = groupAdd.map((wanted) => {
    const group = groups.find((g) => g.name === wanted || String(g.gid) === wanted);
    if (group !== undefined) return group.gid;
    const number = atoi(wanted);
    if (Number.isNaN(number))
      throw invalidArgument(`Unable to find group ${wanted}: no matching entries in group file`);
    return checkRange(number);
  });
  return { uid, gid, additionalGids: [...new Set([gid, ...supplementary, ...added])] };
}

/**
 * Resolve `path` (absolute, inside the container) to a host path below `root` the way the
 * container would see it: symlinks are followed, absolute targets start again at `root`, and `..`
 * stops at `root`. Returns undefined when a component does not exist.
 */
async function resolveInRoot(root: string, path: string): Promise<string | undefined> {
  const pending = path.split('/').filter((part) => part !== '' && part !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const host = posix.join(root, ...resolved, part);
    let stats;
    try {
      stats = await lstat(host);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    if (!stats.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw invalidArgument(`${path}: too many levels of symbolic links`);
    const target = await readlink(host);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return posix.join(root, ...resolved);
}

/**
 * The contents of the file at `path` inside the root filesystem `rootfs`, or undefined when it
 * does not exist. The opened file is checked, through /proc/self/fd, to lie below `rootfs`, so a
 * symlink swapped in after the resolution cannot make this read a host file.
 */
export async function readFileInRoot(rootfs: string, path: string): Promise<string | undefined> {
  const root = await realpath(rootfs);
  const hostPath = await resolveInRoot(root, path);
  if (hostPath === undefined) return undefined;
  let handle;
  try {
    handle = await open(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    if (errnoCode(err) === 'ELOOP')
      throw invalidArgument(`${path} in the container changed while it was read`);
    throw err;
  }
  try {
    const opened = await readlink(`/proc/self/fd/${handle.fd}`);
    if (!opened.startsWith(root === '/' ? '/' : `${root}/`))
      throw invalidArgument(`${path} in the container resolves outside its root filesystem`);
    const stats = await handle.stat();
    if (!stats.isFile()) throw invalidArgument(`${path} in the container is not a regular file`);
    if (stats.size > MAX_FILE_SIZE)
      throw invalidArgument(`${path} in the container is larger than ${MAX_FILE_SIZE} bytes`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Docker's user resolution for `docker run -u USER --group-add GROUP`: uid, gid and the
 * additional gids, read from /etc/passwd and /etc/group of `rootfs` (a host path).
 */
export async function resolveUser(
  rootfs: string,
  userSpec: string | undefined,
  groupAdd: string[] | null = [],
): Promise<ResolvedUser> {
  const [passwd, group] = await Promise.all([
    readFileInRoot(rootfs, '/etc/passwd'),
    readFileInRoot(rootfs, '/etc/group'),
  ]);
  return resolveUserFromFiles(passwd, group, userSpec ?? '', groupAdd ?? []);
}
