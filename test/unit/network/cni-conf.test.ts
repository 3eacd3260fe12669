// Network configuration files: parsing, validation messages, and a configuration directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { loadConfDir, parseConf, parseConfList } from '../../../src/network/cni/conf.js';

const bridge = { type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', subnet: '10.22.0.0/16' } };

/** Asserts an invalid-argument BerthError whose message matches. */
function rejects(action: () => unknown, message: RegExp): void {
  assert.throws(action, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.kind, 'invalid-argument');
    assert.match(err.message, message);
    return true;
  });
}

test('a configuration list keeps plugin fields and declared capabilities', () => {
  const list = parseConfList(
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'pods',
      disableCheck: true,
      plugins: [bridge, { type: 'portmap', capabilities: { portMappings: true }, snat: false }],
    }),
  );
  assert.deepEqual(list, {
    cniVersion: '1.0.0',
    name: 'pods',
    disableCheck: true,
    plugins: [bridge, { type: 'portmap', capabilities: { portMappings: true }, snat: false }],
  });
});

test('0.3.0, 0.3.1 and 0.4.0 lists are accepted; older and newer versions are refused by name', () => {
  for (const cniVersion of ['0.3.0', '0.3.1', '0.4.0'])
    assert.equal(
      parseConfList(JSON.stringify({ cniVersion, name: 'n', plugins: [bridge] })).cniVersion,
      cniVersion,
    );
  for (const cniVersion of ['0.2.0', '1.1.0', '2', 1])
    rejects(
      () =>
        parseConfList(
          JSON.stringify({ cniVersion, name: 'n', plugins: [bridge] }),
          '/etc/cni/net.d/10-n.conflist',
        ),
      /^\/etc\/cni\/net\.d\/10-n\.conflist \(network "n"\): "cniVersion" .* is not supported; use one of 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0$/,
    );
});

test('a bad list names its source and the offending field', () => {
  const src = 'net.conflist';
  rejects(() => parseConfList('{"name": ', src), /^net\.conflist: not valid JSON/);
  rejects(() => parseConfList('[]', src), /^net\.conflist: must be a JSON object$/);
  rejects(
    () => parseConfList(JSON.stringify({ cniVersion: '1.0.0', plugins: [bridge] }), src),
    /"name" is missing$/,
  );
  rejects(
    () => parseConfList(JSON.stringify({ cniVersion: '1.0.0', name: '-x/y', plugins: [bridge] }), src),
    /"name" "-x\/y" must start with a letter or digit/,
  );
  rejects(
    () => parseConfList(JSON.stringify({ name: 'n', plugins: [bridge] }), src),
    /"cniVersion" is missing$/,
  );
  rejects(
    () => parseConfList(JSON.stringify({ cniVersion: '1.0.0', name: 'n' }), src),
    /"plugins" is missing$/,
  );
  rejects(
    () => parseConfList(JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [] }), src),
    /"plugins" must be a non-empty list$/,
  );
  rejects(
    () =>
      parseConfList(JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [bridge, { mtu: 1 }] }), src),
    /^net\.conflist \(network "n"\) plugins\[1\]: "type" is missing$/,
  );
  rejects(
    () =>
      parseConfList(
        JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: '../../bin/sh' }] }),
        src,
      ),
    /plugins\[0\]: "type" "..\/..\/bin\/sh" is not a plugin file name$/,
  );
  rejects(
    () =>
      parseConfList(
        JSON.stringify({
          cniVersion: '1.0.0',
          name: 'n',
          plugins: [{ type: 'portmap', capabilities: ['x'] }],
        }),
        src,
      ),
    /"capabilities" must map capability names to true or false$/,
  );
  rejects(
    () =>
      parseConfList(
        JSON.stringify({ cniVersion: '1.0.0', name: 'n', disableCheck: 'yes', plugins: [bridge] }),
        src,
      ),
    /"disableCheck" must be true or false$/,
  );
});

test('a single-plugin configuration becomes a list of one', () => {
  const list = parseConf(JSON.stringify({ cniVersion: '0.4.0', name: 'single', ...bridge }));
  assert.deepEqual(list, { cniVersion: '0.4.0', name: 'single', plugins: [bridge] });
  rejects(
    () => parseConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [bridge] }), 'x.conf'),
    /^x\.conf \(network "n"\): has a "plugins" list; a network configuration list belongs in a \.conflist file$/,
  );
  rejects(
    () => parseConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n' }), 'x.conf'),
    /"type" is missing$/,
  );
});

test('a configuration directory loads .conflist, .conf and .json files in file name order', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-unit-cni-conf-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, '20-b.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'b', type: 'bridge' }));
  await writeFile(
    join(dir, '10-a.conflist'),
    JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'loopback' }] }),
  );
  await writeFile(join(dir, '30-c.json'), JSON.stringify({ cniVersion: '0.4.0', name: 'c', type: 'ptp' }));
  await writeFile(join(dir, '05-readme.txt'), 'not a network');
  await mkdir(join(dir, '00-dir.conflist'));
  const lists = await loadConfDir(dir);
  assert.deepEqual(
    lists.map((list) => [list.name, list.plugins.map((p) => p.type)]),
    [
      ['a', ['loopback']],
      ['b', ['bridge']],
      ['c', ['ptp']],
    ],
  );

  await writeFile(join(dir, '40-bad.conflist'), JSON.stringify({ cniVersion: '1.0.0', plugins: [] }));
  await assert.rejects(loadConfDir(dir), (err: unknown) => {
    assert.ok(err instanceof BerthError);
    assert.equal(err.message, `${join(dir, '40-bad.conflist')}: "name" is missing`);
    return true;
  });
});

test('a missing configuration directory holds no networks', async () => {
  assert.deepEqual(await loadConfDir(join(tmpdir(), 'berth-unit-cni-no-such-dir', 'net.d')), []);
});
