/**
 * Reading an image's JSON blobs (manifests, indexes, configs) from the content store, validated
 * and cached: blobs are immutable, so a parsed document stays true for its digest.
 */
import { invalidArgument } from '../../common/errors.js';
import { parseDigest } from '../../content/digest.js';
import type { ContentStore } from '../../content/store.js';
import type { ImageConfig, ImageIndex, ImageManifest } from '../../oci/image-spec.js';
import { parseManifestDocument, type ManifestDocument } from '../registry/manifest.js';

/** Configs and manifests are small; anything larger is refused rather than read into memory. */
export const JSON_BLOB_LIMIT = 4 * 1024 * 1024;
const CACHE_ENTRIES = 2048;

type FieldType = 'string' | 'strings' | 'boolean' | 'stringMap' | 'set' | 'healthcheck';

/** The run settings (image-spec config.config) berth reads, with the JSON type each must have. */
const RUN_CONFIG_FIELDS: Record<string, FieldType> = {
  User: 'string',
  ExposedPorts: 'set',
  Env: 'strings',
  Entrypoint: 'strings',
  Cmd: 'strings',
  Volumes: 'set',
  WorkingDir: 'string',
  Labels: 'stringMap',
  StopSignal: 'string',
  ArgsEscaped: 'boolean',
  Healthcheck: 'healthcheck',
  OnBuild: 'strings',
  Shell: 'strings',
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isStrings = (value: unknown): boolean =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');

function fits(type: FieldType, value: unknown): boolean {
  switch (type) {
    case 'string':
    case 'boolean':
      return typeof value === type;
    case 'strings':
      return isStrings(value);
    case 'stringMap':
      return isObject(value) && Object.values(value).every((item) => typeof item === 'string');
    case 'set':
      return isObject(value) && Object.values(value).every((item) => item === null || isObject(item));
    case 'healthcheck':
      return (
        isObject(value) &&
        (value.Test === undefined || value.Test === null || isStrings(value.Test)) &&
        ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'].every(
          (key) => value[key] === undefined || value[key] === null || Number.isFinite(value[key]),
        )
      );
  }
}

/**
 * The run settings must have the types Docker's Go structs give them (null is a zero value): a
 * registry's config with `"Env": [{}]` would otherwise crash `docker run` far from here.
 */
function checkRunConfig(config: Record<string, unknown>, where: string): void {
  for (const [key, type] of Object.entries(RUN_CONFIG_FIELDS)) {
    const value = config[key];
    if (value !== undefined && value !== null && !fits(type, value))
      throw invalidArgument(`${where} has a config.${key} of the wrong type`);
  }
}

/** Validate an image config: os, architecture and rootfs.diff_ids are what berth relies on. */
export function parseImageConfig(data: Uint8Array, where: string): ImageConfig {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    throw invalidArgument(`${where} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null) throw invalidArgument(`${where} is not a JSON object`);
  const config = value as Partial<ImageConfig>;
  if (typeof config.os !== 'string' || config.os === '') throw invalidArgument(`${where} has no "os"`);
  if (typeof config.architecture !== 'string' || config.architecture === '') {
    throw invalidArgument(`${where} has no "architecture"`);
  }
  const diffIds = config.rootfs?.diff_ids;
  if (config.rootfs?.type !== 'layers' || !Array.isArray(diffIds)) {
    throw invalidArgument(`${where} has no rootfs of type "layers" with diff_ids`);
  }
  diffIds.forEach((diffId, i) => parseDigest(String(diffId), `${where} rootfs.diff_ids[${i}]`));
  if (config.config !== undefined && config.config !== null) {
    if (!isObject(config.config)) throw invalidArgument(`${where} has a "config" that is not an object`);
    checkRunConfig(config.config, where);
  }
  if (config.history !== undefined && !Array.isArray(config.history)) {
    throw invalidArgument(`${where} has a "history" that is not an array`);
  }
  config.history?.forEach((entry, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      throw invalidArgument(`${where} history[${i}] is not an object`);
  });
  return config as ImageConfig;
}

export class ImageBlobs {
  private readonly cache = new Map<string, ManifestDocument | ImageConfig>();

  constructor(readonly content: ContentStore) {}

  private async readJson(digest: string, what: string): Promise<Buffer> {
    const info = await this.content.info(digest);
    if (!info) throw invalidArgument(`${what} ${digest} is not in the content store`);
    if (info.size > JSON_BLOB_LIMIT) {
      throw invalidArgument(
        `${what} ${digest} is ${info.size} bytes, more than the ${JSON_BLOB_LIMIT} allowed`,
      );
    }
    return this.content.readAll(digest);
  }

  private remember<T extends ManifestDocument | ImageConfig>(digest: string, value: T): T {
    if (this.cache.size >= CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(digest, value);
    return value;
  }

  /** A manifest or index document. */
  async document(digest: string): Promise<ManifestDocument> {
    const cached = this.cache.get(`doc:${digest}`) as ManifestDocument | undefined;
    if (cached) return cached;
    const data = await this.readJson(digest, 'manifest');
    return this.remember(`doc:${digest}`, parseManifestDocument(data, undefined, `manifest ${digest}`));
  }

  async manifest(digest: string): Promise<ImageManifest> {
    const document = await this.document(digest);
    if (document.kind !== 'manifest') throw invalidArgument(`${digest} is an index, not an image manifest`);
    return document.manifest;
  }

  async index(digest: string): Promise<ImageIndex> {
    const document = await this.document(digest);
    if (document.kind !== 'index') throw invalidArgument(`${digest} is an image manifest, not an index`);
    return document.index;
  }

  async config(digest: string): Promise<ImageConfig> {
    const cached = this.cache.get(`config:${digest}`) as ImageConfig | undefined;
    if (cached) return cached;
    const data = await this.readJson(digest, 'image config');
    return this.remember(`config:${digest}`, parseImageConfig(data, `image config ${digest}`));
  }
}
