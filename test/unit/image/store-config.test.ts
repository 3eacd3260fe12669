import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainIdsOf } from '../../../src/image/store/image-store.js';
import { runConfigOf } from '../../../src/image/store/image-config.js';
import { recordUnpackedSize } from '../../../src/image/store/layer-size.js';
import { openStores, storeImage } from './store-fixtures.js';

test('inspect gives the image config, normalised run settings, diff and chain IDs', async (t) => {
  const { content, images } = await openStores(t);
  const image = await storeImage(content, {
    layers: [{ a: '1' }, { b: '2' }],
    architecture: 'arm64',
    config: {
      Entrypoint: ['/entry'],
      Cmd: ['serve', '--port', '80'],
      Env: ['PATH=/bin', 'A=1'],
      User: '1000:1000',
      WorkingDir: '/srv',
      ExposedPorts: { '80/tcp': {}, '53/udp': {} },
      Volumes: { '/data': {} },
      Labels: { 'org.example': 'yes' },
      Healthcheck: { Test: ['CMD', 'true'], Interval: 1_000_000_000 },
      StopSignal: 'SIGQUIT',
      OnBuild: ['RUN true'],
    },
  });
  await images.record(image.target, ['svc:1']);
  const details = await images.inspect('svc:1');
  assert.equal(details.id, image.id);
  assert.equal(details.architecture, 'arm64');
  assert.equal(details.os, 'linux');
  assert.deepEqual(details.runConfig, {
    entrypoint: ['/entry'],
    cmd: ['serve', '--port', '80'],
    env: ['PATH=/bin', 'A=1'],
    user: '1000:1000',
    workingDir: '/srv',
    exposedPorts: ['53/udp', '80/tcp'],
    volumes: ['/data'],
    labels: { 'org.example': 'yes' },
    healthcheck: { Test: ['CMD', 'true'], Interval: 1_000_000_000 },
    stopSignal: 'SIGQUIT',
    onBuild: ['RUN true'],
  });
  assert.deepEqual(details.diffIds, image.config.rootfs.diff_ids);
  assert.deepEqual(details.chainIds, chainIdsOf(image.config.rootfs.diff_ids));
  assert.equal(details.chainIds[0], details.diffIds[0]);
  assert.notEqual(details.chainIds[1], details.diffIds[1]);
  assert.deepEqual(await images.config(image.id.slice(7, 15)), image.config);
});

test('absent config fields come back empty, not undefined', () => {
  const run = runConfigOf({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  assert.deepEqual(run, {
    entrypoint: [],
    cmd: [],
    env: [],
    user: '',
    workingDir: '',
    exposedPorts: [],
    volumes: [],
    labels: {},
    onBuild: [],
  });
});

test('history is newest first, with layer sizes, empty layers and the tags on top', async (t) => {
  const { content, images } = await openStores(t);
  const image = await storeImage(content, {
    layers: [{ a: 'x'.repeat(5000) }, { b: 'y' }],
    compression: 'gzip',
    history: [
      { created: '2024-01-01T00:00:00Z', created_by: 'ADD rootfs /' },
      { created: '2024-01-02T00:00:00Z', created_by: 'ENV A=1', empty_layer: true },
      { created: '2024-01-03T00:00:00Z', created_by: 'COPY b /', comment: 'second' },
    ],
  });
  await images.record(image.target, ['hist:1', 'hist:2']);
  // The first layer's uncompressed size is known; the second falls back to its stored size.
  await recordUnpackedSize(
    content,
    image.manifest.layers[0]?.digest as string,
    image.layers[0]?.length as number,
  );
  const history = await images.history('hist:1');
  assert.deepEqual(history, [
    {
      id: image.id,
      created: Date.parse('2024-01-03T00:00:00Z') / 1000,
      createdBy: 'COPY b /',
      tags: ['hist:1', 'hist:2'],
      size: image.manifest.layers[1]?.size,
      comment: 'second',
      emptyLayer: false,
    },
    {
      id: '<missing>',
      created: Date.parse('2024-01-02T00:00:00Z') / 1000,
      createdBy: 'ENV A=1',
      tags: [],
      size: 0,
      comment: '',
      emptyLayer: true,
    },
    {
      id: '<missing>',
      created: Date.parse('2024-01-01T00:00:00Z') / 1000,
      createdBy: 'ADD rootfs /',
      tags: [],
      size: image.layers[0]?.length,
      comment: '',
      emptyLayer: false,
    },
  ]);
});
