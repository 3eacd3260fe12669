/** Canned daemon answers shared by the CLI tests: richer than the fake's defaults. */
import {
  CONTAINER_ID,
  IMAGE_ID,
  containerSummary,
  frame,
  imageSummary,
  volume,
  type FakeDockerApi,
} from '../../helpers/fake-docker-api.js';

/** Fixed when the module loads: half a minute away from "11 minutes ago" for docker and berth alike. */
const TEN_MINUTES_AGO = Math.floor(Date.now() / 1000) - 630;

export function richContainers(fake: FakeDockerApi): void {
  fake.route('GET', /^\/containers\/json$/, () => ({
    json: [
      containerSummary({
        Ports: [
          { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
          { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
          { PrivatePort: 443, Type: 'tcp' },
          { PrivatePort: 444, Type: 'tcp' },
          { PrivatePort: 445, Type: 'tcp' },
          { IP: '127.0.0.1', PrivatePort: 53, PublicPort: 5353, Type: 'udp' },
        ],
        // One label: docker joins several in Go's random map order.
        Labels: { 'com.example.team': 'infra' },
        Mounts: [
          { Type: 'volume', Name: 'data', Source: '/var/lib/berth/volumes/data/_data', Driver: 'local' },
          { Type: 'bind', Source: '/srv/a/very/long/path/on/the/host', Driver: '' },
        ],
        NetworkSettings: { Networks: { backend: {} } },
        SizeRw: 12345,
        SizeRootFs: 4273895,
        Command: '/bin/sh -c "while true; do echo hello; sleep 1; done"',
      }),
      containerSummary({
        Id: 'deadbeef'.repeat(8),
        Names: ['/old', '/web/old-link'],
        Image: 'sha256:' + 'ab'.repeat(32),
        ImageID: 'sha256:' + 'ab'.repeat(32),
        State: 'exited',
        Status: 'Exited (137) 2 hours ago',
        Created: 1690000000,
        Command: 'true',
      }),
      containerSummary({
        Id: 'feedface'.repeat(8),
        Names: ['/tagged'],
        Image: 'localhost:5000/team/app:v1.2',
        ImageID: 'sha256:' + 'cd'.repeat(32),
        Status: 'Up 10 minutes (healthy)',
        Created: TEN_MINUTES_AGO,
      }),
    ],
  }));
}

export function richImages(fake: FakeDockerApi): void {
  fake.route('GET', /^\/images\/json$/, () => ({
    json: [
      imageSummary({
        // One repository per image: docker lists several in Go's random map order.
        RepoTags: ['busybox:latest', 'busybox:1.36'],
        RepoDigests: [
          'busybox@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7',
          'busybox@sha256:' + '12'.repeat(32),
        ],
        Containers: 2,
        SharedSize: 1000,
      }),
      imageSummary({
        Id: 'sha256:' + 'ef'.repeat(32),
        RepoTags: [],
        RepoDigests: [],
        Size: 999999,
        Created: 1600000000,
      }),
      imageSummary({
        Id: 'sha256:' + '34'.repeat(32),
        RepoTags: [],
        RepoDigests: ['alpine@sha256:' + '56'.repeat(32)],
        Size: 7340000,
        Created: 1650000000,
      }),
    ],
  }));
}

export function richVolumes(fake: FakeDockerApi): void {
  fake.route('GET', /^\/volumes$/, () => ({
    json: {
      Volumes: [
        volume('vol10', { Labels: { a: 'b' } }),
        volume('vol9'),
        volume('3f2a', { Driver: 'local', UsageData: { Size: 12000, RefCount: 2 } }),
      ],
      Warnings: null,
    },
  }));
}

export function networks(fake: FakeDockerApi): void {
  fake.route('GET', /^\/networks$/, () => ({
    json: [
      {
        Name: 'host',
        Id: 'ef'.repeat(32),
        Created: '2023-11-14T22:13:20Z',
        Scope: 'local',
        Driver: 'host',
        EnableIPv6: false,
        Internal: false,
        Labels: {},
      },
      {
        Name: 'bridge',
        Id: 'cd'.repeat(32),
        Created: '2023-11-14T22:13:20.123456789Z',
        Scope: 'local',
        Driver: 'bridge',
        EnableIPv6: true,
        Internal: false,
        Labels: { a: 'b' },
      },
    ],
  }));
  fake.route('POST', /^\/networks\/create$/, () => ({
    status: 201,
    json: { Id: 'ab'.repeat(32), Warning: '' },
  }));
  fake.route('POST', /^\/networks\/([^/]+)\/(connect|disconnect)$/, () => ({ status: 200, text: '' }));
  fake.route('POST', /^\/networks\/prune$/, () => ({ json: { NetworksDeleted: ['n1', 'n2'] } }));
  fake.route('GET', /^\/networks\/([^/]+)$/, (_req, [name]) => ({
    json: { Name: name, Id: 'ab'.repeat(32), Driver: 'bridge' },
  }));
  fake.route('DELETE', /^\/networks\/([^/]+)$/, () => ({ status: 204 }));
}

export function containerExtras(fake: FakeDockerApi): void {
  fake.route('GET', /^\/containers\/([^/]+)\/top$/, () => ({
    json: {
      Titles: ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'],
      Processes: [
        ['root', '4242', '4200', '0', '00:00', '?', '00:00:00', 'sleep 300'],
        ['root', '5', '4242', '0', '00:00', '?', '00:00:00', 'sh -c while true; do sleep 1; done'],
      ],
    },
  }));
  fake.route('GET', /^\/containers\/([^/]+)\/changes$/, () => ({
    json: [
      { Kind: 0, Path: '/etc' },
      { Kind: 1, Path: '/etc/new' },
      { Kind: 2, Path: '/tmp/x' },
    ],
  }));
  fake.route('POST', /^\/containers\/prune$/, () => ({
    json: { ContainersDeleted: ['aaa', 'bbb'], SpaceReclaimed: 123456 },
  }));
  fake.route('GET', /^\/containers\/([^/]+)\/json$/, () => ({
    json: {
      Id: CONTAINER_ID,
      Config: { Tty: false },
      NetworkSettings: {
        Ports: {
          '80/tcp': [
            { HostIp: '0.0.0.0', HostPort: '8080' },
            { HostIp: '::', HostPort: '8080' },
          ],
          '53/udp': null,
          '443/tcp': [{ HostIp: '127.0.0.1', HostPort: '8443' }],
        },
      },
    },
  }));
  fake.route('GET', /^\/containers\/([^/]+)\/logs$/, () => ({
    headers: { 'Content-Type': 'application/vnd.docker.multiplexed-stream' },
    chunks: [frame(1, 'line1\n'), frame(2, 'err1\n'), frame(1, 'line2\n')],
  }));
  fake.route('GET', /^\/containers\/([^/]+)\/stats$/, () => ({
    json: {
      id: CONTAINER_ID,
      name: '/web',
      pids_stats: { current: 3 },
      blkio_stats: {
        io_service_bytes_recursive: [
          { major: 8, minor: 0, op: 'read', value: 4096 },
          { major: 8, minor: 0, op: 'write', value: 1234567 },
        ],
      },
      cpu_stats: { cpu_usage: { total_usage: 200000000 }, system_cpu_usage: 20000000000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 100000000 }, system_cpu_usage: 10000000000, online_cpus: 2 },
      memory_stats: { usage: 10485760, limit: 25769803776, stats: { total_inactive_file: 1048576 } },
      networks: { eth0: { rx_bytes: 1500, tx_bytes: 800 } },
    },
  }));
  fake.route('GET', /^\/containers\/([^/]+)\/export$/, () => ({
    headers: { 'Content-Type': 'application/x-tar' },
    text: 'EXPORTED',
  }));
}

export function imageExtras(fake: FakeDockerApi): void {
  fake.route('POST', /^\/commit$/, () => ({ status: 201, json: { Id: 'sha256:' + 'ab'.repeat(32) } }));
  fake.route('POST', /^\/images\/prune$/, () => ({
    json: { ImagesDeleted: [{ Untagged: 'foo:latest' }, { Deleted: 'sha256:abc' }], SpaceReclaimed: 5000 },
  }));
  fake.route('DELETE', /^\/images\/(.+)$/, () => ({
    json: [{ Untagged: 'busybox:latest' }, { Deleted: IMAGE_ID }],
  }));
  fake.route('POST', /^\/images\/(.+)\/tag$/, () => ({ status: 201, text: '' }));
  fake.route('GET', /^\/images\/(.+)\/history$/, () => ({
    json: [
      {
        Id: IMAGE_ID,
        Created: 1700000000,
        CreatedBy: '/bin/sh -c #(nop)\tCMD ["sh"] with a very long line of stuff',
        Size: 0,
        Comment: '',
        Tags: ['busybox:latest'],
      },
      {
        Id: '<missing>',
        Created: 1690000000,
        CreatedBy: 'ADD file:abc in /',
        Size: 4261550,
        Comment: 'imported',
        Tags: null,
      },
    ],
  }));
  fake.route('GET', /^\/images\/get$/, () => ({
    headers: { 'Content-Type': 'application/x-tar' },
    text: 'TARDATA',
  }));
  fake.route('POST', /^\/images\/load$/, () => ({
    headers: { 'Content-Type': 'application/json' },
    chunks: [JSON.stringify({ stream: 'Loaded image: busybox:latest\n' }) + '\n'],
  }));
}

/** A pull stream with two layers, progress updates, the digest and the final status. */
export const PULL_MESSAGES = [
  { status: 'Pulling from library/busybox', id: 'latest' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'aaaaaaaaaaaa' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'bbbbbbbbbbbb' },
  {
    status: 'Downloading',
    progressDetail: { current: 1000000, total: 3400000 },
    progress: '[==>    ] 1MB/3.4MB',
    id: 'aaaaaaaaaaaa',
  },
  {
    status: 'Downloading',
    progressDetail: { current: 2000000, total: 3400000 },
    progress: '[====>  ] 2MB/3.4MB',
    id: 'aaaaaaaaaaaa',
  },
  { status: 'Verifying Checksum', progressDetail: {}, id: 'aaaaaaaaaaaa' },
  { status: 'Download complete', progressDetail: {}, id: 'aaaaaaaaaaaa' },
  {
    status: 'Extracting',
    progressDetail: { current: 32768, total: 3400000 },
    progress: '[>   ] 32kB/3.4MB',
    id: 'aaaaaaaaaaaa',
  },
  { status: 'Pull complete', progressDetail: {}, id: 'aaaaaaaaaaaa' },
  { status: 'Already exists', progressDetail: {}, id: 'bbbbbbbbbbbb' },
  { status: 'Digest: sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7' },
  { status: 'Status: Downloaded newer image for busybox:latest' },
];

export function pulls(fake: FakeDockerApi): void {
  fake.route('POST', /^\/images\/create$/, (req) =>
    req.query.has('fromSrc')
      ? {
          headers: { 'Content-Type': 'application/json' },
          chunks: [JSON.stringify({ status: 'sha256:' + '78'.repeat(32) }) + '\n'],
        }
      : {
          headers: { 'Content-Type': 'application/json' },
          chunks: PULL_MESSAGES.map((m) => JSON.stringify(m) + '\r\n'),
        },
  );
  fake.route('POST', /^\/images\/(.+)\/push$/, () => ({
    headers: { 'Content-Type': 'application/json' },
    chunks: [
      JSON.stringify({ status: 'The push refers to repository [docker.io/foo/bar]' }) + '\n',
      JSON.stringify({ status: 'Preparing', progressDetail: {}, id: 'aaaaaaaaaaaa' }) + '\n',
      JSON.stringify({
        errorDetail: { message: 'denied: requested access to the resource is denied' },
        error: 'denied: requested access to the resource is denied',
      }) + '\n',
    ],
  }));
}

export function diskUsage(fake: FakeDockerApi): void {
  fake.route('GET', /^\/system\/df$/, () => ({
    json: {
      LayersSize: 4261550,
      Images: [
        imageSummary({ Containers: 1, SharedSize: 0 }),
        imageSummary({
          Id: 'sha256:' + 'cd'.repeat(32),
          RepoTags: ['alpine:3'],
          RepoDigests: [],
          Size: 7000000,
          SharedSize: 0,
          Containers: 0,
        }),
      ],
      Containers: [
        containerSummary({
          SizeRw: 1234,
          SizeRootFs: 4262784,
          Mounts: [{ Name: 'data', Driver: 'local', Type: 'volume' }],
        }),
        containerSummary({
          Id: 'deadbeef'.repeat(8),
          Names: ['/old'],
          Image: 'alpine:3',
          State: 'exited',
          Status: 'Exited (0) 2 hours ago',
          SizeRw: 5000,
          Command: 'sh',
        }),
      ],
      Volumes: [
        volume('data', { UsageData: { Size: 10000, RefCount: 1 } }),
        volume('old', { UsageData: { Size: 3000, RefCount: 0 } }),
      ],
      BuildCache: [
        {
          ID: 'bc1',
          Type: 'regular',
          Description: 'x',
          InUse: false,
          Shared: false,
          Size: 1000,
          CreatedAt: '2023-11-14T22:13:20Z',
          LastUsedAt: '2023-11-14T22:13:20Z',
          UsageCount: 2,
        },
      ],
    },
  }));
}

export function prunes(fake: FakeDockerApi): void {
  fake.route('POST', /^\/containers\/prune$/, () => ({
    json: { ContainersDeleted: ['aaa'], SpaceReclaimed: 100 },
  }));
  fake.route('POST', /^\/networks\/prune$/, () => ({ json: { NetworksDeleted: null } }));
  fake.route('POST', /^\/volumes\/prune$/, () => ({
    json: { VolumesDeleted: ['v1', 'v2'], SpaceReclaimed: 2048 },
  }));
  fake.route('POST', /^\/images\/prune$/, () => ({
    json: { ImagesDeleted: [{ Deleted: 'sha256:abc' }], SpaceReclaimed: 5000 },
  }));
  fake.route('POST', /^\/build\/prune$/, () => ({ json: { CachesDeleted: null, SpaceReclaimed: 0 } }));
}

export function events(fake: FakeDockerApi): void {
  fake.route('GET', /^\/events$/, () => ({
    headers: { 'Content-Type': 'application/json' },
    chunks: [
      JSON.stringify({
        Type: 'container',
        Action: 'start',
        Actor: { ID: 'abc', Attributes: { name: 'web', image: 'busybox' } },
        scope: 'local',
        time: 1700000000,
      }).replace(/}$/, ',"timeNano":1700000000123456789}') + '\n',
      JSON.stringify({
        Type: 'network',
        Action: 'connect',
        Actor: { ID: 'def', Attributes: {} },
        time: 1700000001,
      }) + '\n',
    ],
  }));
}
