import { test, type TestContext } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { parseCommandLine } from '../../../src/daemon/flags.js';
import { Logger } from '../../../src/daemon/log.js';
import { loadConfig, startDaemon } from '../../../src/daemon/main.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-daemon-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * No default bridge, and a firewall table of the test's own that goes with it: a daemon with the
 * defaults would leave berth0 and the table `inet berth` on the machine. Returns the flags.
 */
function isolatedNetwork(t: TestContext): string[] {
  const table = `berth_unit_${process.pid}`;
  const previous = process.env.BERTH_FIREWALL_TABLE;
  process.env.BERTH_FIREWALL_TABLE = table;
  t.after(() => {
    if (previous === undefined) delete process.env.BERTH_FIREWALL_TABLE;
    else process.env.BERTH_FIREWALL_TABLE = previous;
    spawnSync('nft', ['delete', 'table', 'inet', table]);
  });
  return ['--bridge', 'none'];
}

test('the configuration file: optional by default, required when named, empty means defaults', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'missing.json');
  const implicit = { ...parseCommandLine([]), configFile: missing };
  assert.equal((await loadConfig(implicit)).dataRoot, '/var/lib/berth');
  await assert.rejects(
    loadConfig(parseCommandLine(['--config-file', missing])),
    (err: unknown) =>
      err instanceof BerthError &&
      err.message.startsWith(`unable to configure berthd with file ${missing}: ENOENT`),
  );
  const empty = join(dir, 'empty.json');
  await writeFile(empty, '  \n');
  assert.equal((await loadConfig(parseCommandLine(['--config-file', empty]))).execRoot, '/run/berth');
  const broken = join(dir, 'broken.json');
  await writeFile(broken, '{\n  "debug": true\n  "hosts": []\n}\n');
  await assert.rejects(loadConfig(parseCommandLine(['--config-file', broken])), {
    message: `unable to configure berthd with file ${broken}: invalid JSON at line 3, column 3: expected ',' or '}' after a property value, found "\\""`,
  });
  const good = join(dir, 'good.json');
  await writeFile(good, JSON.stringify({ 'data-root': '/srv/b', debug: true }));
  const config = await loadConfig(parseCommandLine(['--config-file', good, '--exec-root', '/run/x']));
  assert.deepEqual([config.dataRoot, config.execRoot, config.debug], ['/srv/b', '/run/x', true]);
});

test('the daemon serves, reloads with an event, and cleans up after itself', async (t) => {
  const dir = await tempDir(t);
  const socket = join(dir, 'b.sock');
  const configFile = join(dir, 'daemon.json');
  await writeFile(configFile, '{"debug": false}');
  const cmd = parseCommandLine([
    '--config-file',
    configFile,
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'exec'),
    '-H',
    `unix://${socket}`,
    ...isolatedNetwork(t),
  ]);
  const lines: string[] = [];
  const config = await loadConfig(cmd);
  const daemon = await startDaemon(config, cmd, new Logger('info', (line) => lines.push(line)));
  let closed = false;
  t.after(() => (closed ? undefined : daemon.close()));
  assert.equal(await readFile(join(dir, 'exec', 'berthd.pid'), 'utf8'), String(process.pid));
  const id = (await readFile(join(dir, 'data', 'engine-id'), 'utf8')).trim();
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.ok(lines.some((line) => line.includes(`API listen on ${socket}`)));

  const getInfo = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      http
        .get({ socketPath: socket, path: '/v1.50/info', agent: false }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve(JSON.parse(body)));
        })
        .on('error', reject);
    });
  const info = await getInfo();
  assert.equal(info.ID, id);
  assert.equal(info.DockerRootDir, join(dir, 'data'));
  assert.equal(info.Debug, false);
  assert.deepEqual([info.Containers, info.Images], [0, 0]);
  // The engine's provider fills the counts in.
  daemon.services.engineInfo = async () => ({ Containers: 2, ContainersRunning: 1, Images: 3 });
  const counted = await getInfo();
  assert.deepEqual([counted.Containers, counted.ContainersRunning, counted.Images], [2, 1, 3]);

  const subscription = daemon.services.events.subscribe();
  await writeFile(configFile, '{"debug": true}');
  await daemon.reload();
  const reloaded = await subscription.next();
  assert.equal(reloaded?.Type, 'daemon');
  assert.equal(reloaded?.Action, 'reload');
  assert.equal(reloaded?.Actor.ID, id);
  assert.equal(reloaded?.Actor.Attributes.debug, 'true');
  assert.equal(config.debug, true);
  // A broken file on reload keeps the running configuration.
  await writeFile(configFile, '{"debug": "maybe"}');
  await daemon.reload();
  assert.equal(config.debug, true);
  assert.ok(
    lines.some((line) => line.includes('Reloading the configuration failed, keeping the running one')),
  );

  await daemon.close();
  closed = true;
  await assert.rejects(lstat(socket), { code: 'ENOENT' });
  await assert.rejects(lstat(join(dir, 'exec', 'berthd.pid')), { code: 'ENOENT' });
});

test('a failed start leaves no PID file behind', async (t) => {
  const dir = await tempDir(t);
  const cmd = parseCommandLine([
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'exec'),
    '-H',
    'tcp://127.0.0.1:1',
    ...isolatedNetwork(t),
  ]);
  await assert.rejects(
    startDaemon(await loadConfig(cmd), cmd, new Logger('fatal')),
    /refusing to listen on tcp:\/\/127\.0\.0\.1:1/,
  );
  await assert.rejects(lstat(join(dir, 'exec', 'berthd.pid')), { code: 'ENOENT' });
});
