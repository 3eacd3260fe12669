/**
 * berth against the real docker CLI: the same arguments go through both, against the same fake
 * Engine API; the requests (method, path, query, JSON body) and what is printed must be the same.
 * The docker CLI is installed on every machine (ENVIRONMENT.md); without it these tests skip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FakeDockerApi } from '../../helpers/fake-docker-api.js';
import { compareWithDocker, haveDocker, tempDir } from './harness.js';
import {
  containerExtras,
  diskUsage,
  events,
  imageExtras,
  networks,
  prunes,
  pulls,
  richContainers,
  richImages,
  richVolumes,
} from './fixtures.js';

interface Case {
  args: string[];
  setup?: (fake: FakeDockerApi) => void;
  /** Compare only the requests (output differs by design, e.g. tar bytes or client versions). */
  requestsOnly?: boolean;
  ignoreQuery?: string[];
  stdin?: string;
  /** Keep only part of stdout before comparing. */
  stdoutPart?: (text: string) => string;
  /** Requests docker makes that berth deliberately does not (docs/cli.md says why). */
  dockerOnly?: RegExp;
}

const CASES: Case[] = [
  // Lists and their formatting
  { args: ['ps'] },
  { args: ['ps', '-a', '-s', '-n', '3', '--filter', 'status=running', '--filter', 'name=x'] },
  { args: ['ps', '-a'], setup: richContainers },
  { args: ['ps', '-a', '-s', '--no-trunc'], setup: richContainers },
  { args: ['ps', '-q', '-l'], setup: richContainers },
  {
    args: [
      'ps',
      '--format',
      'table {{.Names}}\\t{{.Label "com.example.team"}}\\t{{.Mounts}}\\t{{.Networks}}',
    ],
    setup: richContainers,
  },
  { args: ['ps', '--format', '{{json .}}'], setup: richContainers, stdoutPart: withoutRunningFor },
  { args: ['ps', '--format', '{{.ID}}: {{.Ports}} {{.LocalVolumes}} {{.Labels}}'], setup: richContainers },
  { args: ['ps', '--format', '{{.Size}}'], setup: richContainers },
  { args: ['images'] },
  { args: ['images', '-a', '--digests', '--filter', 'dangling=true'], setup: richImages },
  { args: ['images', 'busybox'], setup: richImages },
  { args: ['images', '-q'], setup: richImages },
  {
    args: [
      'images',
      '--no-trunc',
      '--format',
      'table {{.ID}}\\t{{.Repository}}:{{.Tag}}\\t{{.VirtualSize}}\\t{{.SharedSize}}\\t{{.UniqueSize}}\\t{{.Containers}}',
    ],
    setup: richImages,
  },
  { args: ['images', '--format', 'json'], setup: richImages },
  { args: ['volume', 'ls'], setup: richVolumes },
  { args: ['volume', 'ls', '-q', '--filter', 'dangling=true'], setup: richVolumes },
  { args: ['volume', 'ls', '--format', '{{json .}}'], setup: richVolumes },
  { args: ['network', 'ls'], setup: networks },
  { args: ['network', 'ls', '--no-trunc', '--format', '{{json .}}'], setup: networks },
  {
    args: [
      'network',
      'ls',
      '--format',
      'table {{.Name}}\\t{{.IPv6}}\\t{{.Internal}}\\t{{.Labels}}\\t{{.CreatedAt}}',
    ],
    setup: networks,
  },
  { args: ['system', 'df'], setup: diskUsage },
  { args: ['system', 'df', '-v'], setup: diskUsage },
  { args: ['system', 'df', '--format', '{{json .}}'], setup: diskUsage },
  { args: ['history', 'busybox'], setup: imageExtras },
  { args: ['history', '--no-trunc', '-H=false', 'busybox'], setup: imageExtras },
  { args: ['stats', '--no-stream', 'web'], setup: containerExtras },
  { args: ['top', 'web'], setup: containerExtras },
  { args: ['top', 'web', 'aux'], setup: containerExtras },
  { args: ['diff', 'web'], setup: containerExtras },
  { args: ['port', 'web'], setup: containerExtras },
  { args: ['port', 'web', '80'], setup: containerExtras },
  { args: ['port', 'web', '53/udp'], setup: containerExtras },
  // Inspect
  { args: ['inspect', 'web'] },
  { args: ['inspect', '--type', 'image', 'busybox'] },
  { args: ['inspect', '-f', '{{.Name}} {{.State.Running}} {{json .Config.Cmd}} {{.NoSuchField}}', 'web'] },
  { args: ['container', 'inspect', '-s', 'web'] },
  { args: ['volume', 'inspect', 'data'] },
  {
    args: ['inspect', 'nothere'],
    setup: (fake) =>
      fake.route('GET', /^\/(containers|images|networks|volumes|plugins)\//, () => ({
        status: 404,
        json: { message: 'not found' },
      })),
    dockerOnly: /^\/(info|plugins\/)/,
  },
  // Lifecycle
  { args: ['start', 'web'] },
  { args: ['stop', '-t', '5', 'web'] },
  { args: ['stop', '-s', 'SIGINT', 'web'] },
  { args: ['restart', '-t', '3', 'web'] },
  { args: ['kill', '-s', 'HUP', 'web'] },
  { args: ['kill', 'web'] },
  { args: ['pause', 'web'] },
  { args: ['unpause', 'web'] },
  { args: ['rm', '-f', '-v', 'web'] },
  { args: ['rename', 'web', 'web2'] },
  { args: ['wait', 'web'] },
  {
    args: ['stop', 'web'],
    setup: (fake) =>
      fake.route('POST', /\/stop$/, () => ({ status: 404, json: { message: 'No such container: web' } })),
  },
  {
    args: ['start', 'web', 'other'],
    setup: (fake) =>
      fake.route('POST', /\/start$/, () => ({
        status: 500,
        json: { message: 'failed to create task: permission denied' },
      })),
  },
  { args: ['update', '--memory', '1g', '--cpus', '2', '--restart', 'on-failure:3', 'web'] },
  {
    args: [
      'update',
      '--pids-limit',
      '10',
      '--cpu-shares',
      '512',
      '--memory-swap',
      '-1',
      '--blkio-weight',
      '300',
      '--cpuset-cpus',
      '0-1',
      '--memory-reservation',
      '100m',
      '--cpu-period',
      '100000',
      '--cpu-quota',
      '50000',
      'web',
    ],
  },
  { args: ['container', 'prune', '-f', '--filter', 'until=1h'], setup: containerExtras },
  { args: ['container', 'prune'], setup: containerExtras, stdin: 'n\n' },
  // Create and run
  {
    args: [
      'create',
      '-i',
      '-t',
      '--name',
      'n1',
      '-e',
      'FOO',
      '-w',
      '/w',
      '-u',
      '1000:1000',
      '--entrypoint',
      '/bin/sh',
      '--hostname',
      'h1',
      '-l',
      'a=b',
      '-v',
      '/a:/b:ro',
      '--mount',
      'type=bind,src=/src,dst=/dst,readonly',
      '--mount',
      'type=volume,source=v2,target=/v2,volume-label=x=y',
      '--mount',
      'type=tmpfs,dst=/tm,tmpfs-size=64m',
      '--tmpfs',
      '/run:rw,size=1m',
      '--read-only',
      '--init',
      '--privileged',
      '--cap-add',
      'NET_ADMIN',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--device',
      '/dev/fuse',
      '--ulimit',
      'nofile=1024:2048',
      '--memory',
      '1g',
      '--memory-reservation',
      '512m',
      '--memory-swap',
      '2g',
      '--cpus',
      '1.5',
      '--cpu-shares',
      '512',
      '--cpu-quota',
      '50000',
      '--cpu-period',
      '100000',
      '--cpuset-cpus',
      '0',
      '--pids-limit',
      '100',
      '--blkio-weight',
      '500',
      '--restart',
      'on-failure:3',
      '--stop-signal',
      'SIGINT',
      '--stop-timeout',
      '5',
      '--health-cmd',
      'true',
      '--health-interval',
      '5s',
      '--health-retries',
      '3',
      '--health-timeout',
      '2s',
      '--health-start-period',
      '1s',
      '--oom-score-adj',
      '100',
      '--shm-size',
      '64m',
      '--sysctl',
      'net.ipv4.ip_forward=1',
      '--log-driver',
      'json-file',
      '--log-opt',
      'max-size=10m',
      '--runtime',
      'runc',
      '--network',
      'host',
      '-p',
      '8080:80/tcp',
      '-p',
      '127.0.0.1:53:53/udp',
      '-P',
      '--dns',
      '1.1.1.1',
      '--add-host',
      'h:1.2.3.4',
      '--expose',
      '9000',
      'busybox',
      'sh',
      '-c',
      'echo hi',
    ],
  },
  { args: ['create', '--network', 'mynet', '--network-alias', 'a1', '--ip', '10.0.0.5', 'busybox'] },
  {
    args: [
      'create',
      '--network',
      'name=mynet,alias=x,ip=10.0.0.2',
      '--mac-address',
      '92:d0:c6:0a:29:33',
      'busybox',
    ],
  },
  { args: ['create', '--network', 'none', '-v', '/data', '--entrypoint=', 'busybox'] },
  {
    args: [
      'create',
      '-p',
      '8000-8002:80-82',
      '-p',
      '127.0.0.1::81',
      '-p',
      '[::1]:9000:90',
      '-p',
      '7000-7010:70',
      'busybox',
    ],
  },
  {
    args: ['create', '--cap-add', 'all', '--cap-drop', 'chown', '--security-opt', 'label:disable', 'busybox'],
  },
  {
    args: [
      'create',
      '--device',
      '/dev/sda:/dev/xvda:r',
      '--device',
      '/dev/null:rw',
      '--ulimit',
      'nproc=10',
      'busybox',
    ],
  },
  {
    args: [
      'create',
      '--no-healthcheck',
      '--restart',
      'unless-stopped',
      '--stop-timeout',
      '0',
      '-e',
      'BERTH_UNSET_VAR',
      'busybox',
    ],
  },
  {
    args: [
      'create',
      '--health-interval',
      '1m30s',
      '--add-host',
      'h=1.2.3.4',
      '-a',
      'stdin',
      '-a',
      'stderr',
      'busybox',
    ],
  },
  {
    args: [
      'create',
      '--cgroupns',
      'private',
      '--ipc',
      'host',
      '--pid',
      'host',
      '--uts',
      'host',
      '--userns',
      'host',
      '--cgroup-parent',
      '/x',
      '--group-add',
      '10',
      '--volumes-from',
      'a',
      '--link',
      'b:c',
      '--dns-search',
      'x',
      '--dns-option',
      'ndots:1',
      '--domainname',
      'd',
      '--cpuset-mems',
      '0',
      '--device-cgroup-rule',
      'c 1:3 rwm',
      '--storage-opt',
      'size=1G',
      '--annotation',
      'a=b',
      '--memory-swappiness',
      '10',
      '--oom-kill-disable',
      'busybox',
    ],
  },
  { args: ['create', '--name', 'foo', '--platform', 'linux/arm64', 'busybox'] },
  { args: ['run', 'busybox', 'echo', 'hi'] },
  { args: ['run', '-d', '--name', 'x', 'busybox'], dockerOnly: /\/wait$/ },
  { args: ['run', '--rm', 'busybox'] },
  { args: ['run', '-i', 'busybox', 'cat'] },
  // Option errors: docker's wording and exit codes
  { args: ['run', '--nope', 'busybox'] },
  { args: ['run', '--memory', 'abc', 'busybox'] },
  { args: ['run', '-p', 'abc', 'busybox'] },
  { args: ['run', '--cpus', 'x', 'busybox'] },
  { args: ['run', '-m'] },
  { args: ['run', '--mount', 'type=bind,src=/a', 'busybox'] },
  { args: ['run', '--ulimit', 'nofile=10:5', 'busybox'] },
  { args: ['run', '--sysctl', 'kernel.domainname=x', 'busybox'] },
  { args: ['run', '--rm', '--restart', 'always', 'busybox'] },
  { args: ['run', '--health-cmd=true', '--no-healthcheck', 'busybox'] },
  { args: ['run', '--network-alias', 'a1', 'busybox'] },
  { args: ['run', '-d', '-a', 'stdout', 'busybox'] },
  { args: ['run', '-it', 'busybox'] },
  { args: ['rm'] },
  { args: ['rename', 'a'] },
  { args: ['port'] },
  { args: ['ps', '-a', 'extra'] },
  { args: ['stop', '-x', 'a'] },
  { args: ['frob'] },
  {
    args: ['run', 'nope'],
    setup: (fake) => {
      let attempts = 0;
      fake.route('POST', /^\/containers\/create$/, () =>
        attempts++ === 0
          ? { status: 404, json: { message: 'No such image: nope:latest' } }
          : {
              status: 201,
              json: {
                Id: 'ab'.repeat(32),
                Warnings: ['Your kernel does not support swap limit capabilities.'],
              },
            },
      );
      pulls(fake);
    },
  },
  {
    args: ['run', '-d', 'busybox', 'nope'],
    dockerOnly: /\/wait$/,
    setup: (fake) =>
      fake.route('POST', /\/start$/, () => ({
        status: 400,
        json: { message: 'failed to create task: exec: "nope": executable file not found in $PATH' },
      })),
  },
  // Exec and logs
  { args: ['exec', 'web', 'ls'] },
  { args: ['exec', '-i', 'web', 'cat'], stdin: 'input\n' },
  { args: ['exec', '-d', '-e', 'A=1', '-u', '1000', '-w', '/tmp', '--privileged', 'web', 'ls'] },
  {
    args: ['exec', 'web', 'false'],
    setup: (fake) =>
      fake.route('GET', /^\/exec\/([^/]+)\/json$/, () => ({ json: { ExitCode: 3, Running: false } })),
  },
  { args: ['logs', 'web'], setup: containerExtras },
  {
    args: ['logs', '-f', '--since', '10m', '--until', '1m', '--tail', '5', '-t', '--details', 'web'],
    setup: containerExtras,
    ignoreQuery: ['since', 'until'],
  },
  {
    args: ['logs', '--since', '2024-01-02T03:04:05Z', '--until', '1700000000', 'web'],
    setup: containerExtras,
  },
  // Images
  { args: ['commit', 'web'], setup: imageExtras },
  {
    args: [
      'commit',
      '-c',
      'ENV A=1',
      '-c',
      'CMD ["x"]',
      '-m',
      'hi',
      '-a',
      'me',
      '--pause=false',
      'web',
      'foo:v2',
    ],
    setup: imageExtras,
  },
  { args: ['image', 'prune', '-f'], setup: imageExtras },
  { args: ['image', 'prune', '-a', '-f', '--filter', 'until=1h'], setup: imageExtras },
  { args: ['rmi', '-f', '--no-prune', 'busybox', 'foo'], setup: imageExtras },
  { args: ['tag', 'busybox', 'foo/bar:v1'], setup: imageExtras },
  { args: ['tag', 'busybox', 'localhost:5000/team/app'], setup: imageExtras },
  { args: ['pull', 'busybox'], setup: pulls },
  { args: ['pull', '-q', 'busybox'], setup: pulls },
  { args: ['pull', '--platform', 'linux/arm64', '-a', 'busybox'], setup: pulls },
  {
    args: ['pull', 'busybox:1.36@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7'],
    setup: pulls,
  },
  { args: ['push', 'foo/bar'], setup: pulls },
  { args: ['push', 'localhost:5000/foo:v1'], setup: pulls },
  { args: ['save', 'busybox', 'alpine'], setup: imageExtras },
  { args: ['load'], setup: imageExtras, stdin: 'not really a tar' },
  {
    args: ['import', '-c', 'ENV A=1', '-m', 'hi', '--platform', 'linux/amd64', '-', 'foo:v2'],
    setup: pulls,
    stdin: 'tar bytes',
  },
  // Volumes and networks
  {
    args: [
      'volume',
      'create',
      '-d',
      'local',
      '-o',
      'type=tmpfs',
      '-o',
      'device=tmpfs',
      '--label',
      'a=b',
      'v1',
    ],
  },
  { args: ['volume', 'create'] },
  { args: ['volume', 'rm', '-f', 'v1', 'v2'] },
  { args: ['volume', 'prune', '-f'], setup: prunes },
  { args: ['volume', 'prune', '-a', '-f', '--filter', 'label=a'], setup: prunes },
  {
    args: [
      'network',
      'create',
      '--driver',
      'bridge',
      '--subnet',
      '10.1.0.0/16',
      '--gateway',
      '10.1.0.1',
      '--ip-range',
      '10.1.1.0/24',
      '--label',
      'a=b',
      '-o',
      'com.x=y',
      '--internal',
      '--attachable',
      '--ipv6',
      'n1',
    ],
    setup: networks,
  },
  { args: ['network', 'create', 'n2'], setup: networks },
  { args: ['network', 'connect', '--alias', 'a1', '--ip', '10.1.0.5', 'n1', 'web'], setup: networks },
  { args: ['network', 'connect', 'n1', 'web'], setup: networks },
  { args: ['network', 'disconnect', '-f', 'n1', 'web'], setup: networks },
  { args: ['network', 'prune', '-f'], setup: networks },
  // System
  { args: ['system', 'prune', '-a', '-f', '--volumes'], setup: prunes },
  { args: ['system', 'prune', '-f', '--filter', 'until=24h'], setup: prunes },
  { args: ['events', '--filter', 'type=container'], setup: events },
  { args: ['events', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}'], setup: events },
  { args: ['events', '--since', '1h', '--until', '0s'], setup: events, ignoreQuery: ['since', 'until'] },
  { args: ['version'], stdoutPart: serverSection },
  { args: ['info'], stdoutPart: serverSection },
];

/** The "Server:" part of version/info output: the client part names each program's own build. */
function serverSection(text: string): string {
  const index = text.indexOf('\nServer:');
  return index === -1 ? '' : text.slice(index);
}

/** RunningFor of a container created seconds ago changes between the two runs. */
function withoutRunningFor(text: string): string {
  return text.replace(/"RunningFor":"[^"]*"/g, '"RunningFor":"-"');
}

for (const testCase of CASES) {
  test(
    `berth ${testCase.args.join(' ')} matches docker`,
    { skip: !haveDocker && 'the docker CLI is not installed' },
    async (t) => {
      const configDir = await tempDir(t);
      const result = await compareWithDocker((fake) => testCase.setup?.(fake), testCase.args, {
        stdin: testCase.stdin,
        ignoreQuery: testCase.ignoreQuery,
        configDir,
        env: { BERTH_UNSET_VAR: undefined, FOO: 'bar' },
      });
      const dockerRequests = result.dockerRequests.filter((r) => !testCase.dockerOnly?.test(r.path));
      assert.deepEqual(result.berthRequests, dockerRequests, 'requests');
      if (testCase.requestsOnly) return;
      const part = testCase.stdoutPart ?? ((text: string) => text);
      assert.equal(part(result.berth.stdout), part(result.docker.stdout), 'stdout');
      assert.equal(result.berth.stderr, result.docker.stderr, 'stderr');
      assert.equal(result.berth.code, result.docker.code, 'exit code');
    },
  );
}

test(
  'berth cp sends what docker sends, both directions',
  { skip: !haveDocker && 'the docker CLI is not installed' },
  async (t) => {
    const dir = await tempDir(t);
    const source = join(dir, 'file.txt');
    await writeFile(source, 'hello\n');
    const dirStat = Buffer.from(
      JSON.stringify({
        name: 'tmp',
        size: 4096,
        mode: 2147484159,
        mtime: '2023-11-14T22:13:20Z',
        linkTarget: '',
      }),
    ).toString('base64');
    const setup = (fake: FakeDockerApi): void => {
      fake.route('GET', /^\/containers\/([^/]+)\/archive$/, () => ({
        headers: { 'X-Docker-Container-Path-Stat': dirStat },
      }));
      fake.route('PUT', /^\/containers\/([^/]+)\/archive$/, () => ({ status: 200, text: '' }));
    };
    for (const args of [
      ['cp', source, 'web:/tmp/'],
      ['cp', '-a', source, 'web:/tmp/x'],
    ]) {
      const result = await compareWithDocker(setup, args);
      const strip = (records: typeof result.berthRequests) => records.map((r) => ({ ...r, body: undefined }));
      assert.deepEqual(strip(result.berthRequests), strip(result.dockerRequests));
      assert.equal(result.berth.code, 0);
    }
  },
);
