/**
 * `docker cp` archives into a container (PUT /containers/{id}/archive): the archive is rewritten
 * entry by entry (container-fs.ts rewriteTar) after the path checks extraction makes (climbing
 * names and whiteout names refused, the target's own entry dropped), then applied. Resolving the
 * target path inside the container (RootView) works on open directory descriptors, not on bytes,
 * so it is not a target here; this one covers the archive side. Rejections are BerthErrors, and
 * the rewritten archive must read back to exactly the entries that were written.
 */
import { ByteSource } from '../../../src/archive/byte-source.js';
import { readTar, type TarHeader } from '../../../src/archive/tar-reader.js';
import type { TarEntry } from '../../../src/archive/tar-writer.js';
import { cleanEntryPath, WHITEOUT_PREFIX } from '../../../src/archive/tree-view.js';
import { invalidArgument } from '../../../src/common/errors.js';
import { rewriteTar, toEntry } from '../../../src/engine/container-fs.js';
import { mutateTar } from '../tar-mutate.js';
import { canonicalJson, invariant, type FuzzTarget } from '../target.js';
import { once } from './tar.js';

/** container-fs.ts cleanArchivePath: the same two refusals, as BerthErrors. */
function checkPath(name: string): string[] {
  let components: string[];
  try {
    components = cleanEntryPath(name);
  } catch (err) {
    throw invalidArgument(`archive entry ${JSON.stringify(name)} refused: ${(err as Error).message}`);
  }
  if (components.some((part) => part.startsWith(WHITEOUT_PREFIX)))
    throw invalidArgument(`archive entry ${JSON.stringify(name)} refused: whiteout name`);
  return components;
}

/** What an entry must read back as: the writer drops leading slashes and ends directories with one. */
function comparable(entry: TarEntry | TarHeader, size: number): string {
  let path = entry.path.replace(/^\/+/, '');
  if (entry.type === 'directory') path = path.replace(/\/+$/, '');
  const device = entry.type === 'char' || entry.type === 'block';
  const xattrs = entry.xattrs instanceof Map ? Object.fromEntries(entry.xattrs) : (entry.xattrs ?? {});
  return canonicalJson({
    path,
    type: entry.type,
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    size,
    mtime: Math.floor(entry.mtime ?? 0),
    linkTarget: entry.linkTarget ?? '',
    device: device ? [entry.devMajor ?? 0, entry.devMinor ?? 0] : [],
    xattrs: Object.fromEntries(
      Object.entries(xattrs).map(([key, value]) => [key, Buffer.from(value).toString('hex')]),
    ),
  });
}

export const target: FuzzTarget = {
  name: 'cp-archive',
  description: 'docker cp archives: path checks and rewriteTar, which must read back to what it wrote',
  maxLength: 256 * 1024,
  dictionary: ['ustar\x0000', '././@LongLink', '../', '/', '.wh.', '\x00'],
  mutate: mutateTar,
  async run(input) {
    const written: string[] = [];
    const parts: Buffer[] = [];
    const rewritten = rewriteTar(once(input), async (header) => {
      if (checkPath(header.path).length === 0) return undefined;
      const entry = toEntry(header);
      written.push(comparable(entry, header.type === 'file' ? header.size : 0));
      return entry;
    });
    for await (const chunk of rewritten) parts.push(chunk);
    const readBack: string[] = [];
    for await (const { header, body } of readTar(new ByteSource(once(Buffer.concat(parts))))) {
      let size = 0;
      for await (const chunk of body) size += chunk.length;
      readBack.push(comparable(header, size));
    }
    invariant(
      readBack.length === written.length,
      () => `wrote ${written.length} entries, read back ${readBack.length}`,
    );
    written.forEach((entry, i) =>
      invariant(
        entry === readBack[i],
        () => `entry ${i} was written as ${entry} but reads back as ${readBack[i] ?? ''}`,
      ),
    );
  },
};
