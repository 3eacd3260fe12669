/** The formatting and parsing pieces of berth's CLI, each against docker's documented behaviour. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Template, TemplateError } from '../../../src/cli/format/template.js';
import { renderList, structContext } from '../../../src/cli/format/formatter.js';
import { tabwrite } from '../../../src/cli/format/tabwriter.js';
import { indentJson } from '../../../src/cli/format/json-indent.js';
import {
  bytesSize,
  ellipsis,
  formatG,
  goDuration,
  humanDuration,
  humanSize,
  humanSizeWithPrecision,
} from '../../../src/cli/format/units.js';
import {
  filtersJson,
  fromHumanSize,
  getTimestamp,
  memSwapBytes,
  parseGoDuration,
  parseNanoCpus,
  ramInBytes,
} from '../../../src/cli/opts/values.js';
import { parsePortSpecs, parseRestartPolicy, parseUlimit } from '../../../src/cli/opts/container.js';
import { naturalCompare } from '../../../src/cli/commands/common.js';
import { displayablePorts, formatUsesSize } from '../../../src/cli/commands/ps.js';
import { splitCpArg } from '../../../src/cli/commands/cp.js';
import { computeStats, statsContext, type StatsEntry } from '../../../src/cli/commands/stats.js';
import { progressString, readJsonMessages } from '../../../src/cli/progress.js';
import { DetachWatcher, FrameDemuxer, parseDetachKeys, runSession } from '../../../src/cli/stdio.js';
import { CliContext, type Streams } from '../../../src/cli/context.js';
import { encodeQuery, parseHost } from '../../../src/cli/client.js';
import { CommandError } from '../../../src/cli/errors.js';

const render = (source: string, data: unknown): string => new Template(source).execute(data);

test('templates: fields, nesting, json, missing keys and Go value printing', () => {
  const data = {
    Name: 'web',
    State: { Running: true, Pid: 42 },
    Args: ['a', 'b'],
    Labels: { b: '2', a: '1' },
    Nil: null,
  };
  assert.equal(render('{{.Name}} {{.State.Running}} {{.State.Pid}}', data), 'web true 42');
  assert.equal(render('{{json .Args}} {{json .}}', { Args: ['x'] }), '["x"] {"Args":["x"]}');
  assert.equal(
    render('{{.Args}} {{.Labels}} {{.Nil}} {{.Missing}}', data),
    '[a b] map[a:1 b:2] <nil> <no value>',
  );
  assert.equal(render('{{json .Html}}', { Html: '<a&b>' }), '"<a&b>"');
  assert.equal(render('{{1.5}} {{3}} {{"q\\tx"}} {{`raw\\t`}}', {}), '1.5 3 q\tx raw\\t');
});

test('templates: pipelines, functions, variables, if/else if/else, range, with, trim markers', () => {
  const data = {
    Names: 'web',
    List: ['x', 'y'],
    Map: { k2: 'v2', k1: 'v1' },
    Empty: [],
    N: 3,
    Text: 'a,b,c',
  };
  assert.equal(
    render('{{.Names | upper}} {{lower "ABC"}} {{title "hello world"}}', data),
    'WEB abc Hello World',
  );
  assert.equal(
    render('{{join .List ", "}}|{{split .Text ","}}|{{truncate "abcdef" 3}}|{{pad "x" 2 1}}|', data),
    'x, y|[a b c]|abc|  x |',
  );
  assert.equal(render('{{printf "%s=%d %q %5s|%-3s|" "a" 7 "b" "r" "l"}}', {}), 'a=7 "b"     r|l  |');
  assert.equal(render('{{println "a" 1}}', {}), 'a 1\n');
  assert.equal(render('{{len .List}} {{index .List 1}} {{index .Map "k1"}}', data), '2 y v1');
  assert.equal(render('{{if eq .N 1}}one{{else if gt .N 2}}many{{else}}two{{end}}', data), 'many');
  assert.equal(
    render('{{if and .List (not .Empty)}}yes{{end}}{{if or .Empty .N}}-or{{end}}', data),
    'yes-or',
  );
  assert.equal(render('{{range $i, $v := .List}}{{$i}}={{$v}};{{end}}', data), '0=x;1=y;');
  assert.equal(render('{{range $k, $v := .Map}}{{$k}}:{{$v}} {{end}}', data), 'k1:v1 k2:v2 ');
  assert.equal(render('{{range .Empty}}x{{else}}none{{end}}', data), 'none');
  assert.equal(render('{{with .Map}}{{.k2}}{{end}}{{with .Empty}}no{{else}}else{{end}}', data), 'v2else');
  assert.equal(render('{{$n := .Names}}{{range .List}}{{$n}}-{{.}} {{end}}{{$.N}}', data), 'web-x web-y 3');
  assert.equal(render('a  {{- .N -}}  b {{/* comment */}}c', data), 'a3b c');
  assert.equal(render('{{(index .List 0) | upper}}', data), 'X');
});

test('templates: parse and execution errors say where, like Go', () => {
  assert.throws(() => new Template('{{.Name'), TemplateError);
  assert.throws(() => new Template('{{nosuch .}}'), /function "nosuch" not defined/);
  assert.throws(() => new Template('{{if .A}}x'), /unexpected EOF/);
  assert.throws(() => new Template('{{json.}}'), /unexpected <\.> in operand/);
  const strict = new Template('{{.Name}} {{.Config.Nope}}', { missingKeyError: true });
  try {
    strict.execute({ Name: 'x', Config: {} });
    assert.fail('expected an error');
  } catch (err) {
    assert.ok(err instanceof TemplateError);
    assert.equal(
      strict.describe(err),
      'template: :1:12: executing "" at <.Config.Nope>: map has no entry for key "Nope"',
    );
  }
  const struct = new Template('{{.Foo}}');
  assert.throws(() => struct.execute(structContext({ Bar: 'x' })), /can't evaluate field Foo/);
});

test('list formatting: table header from the same template, json, raw, quiet, \\t escapes', () => {
  const items = [
    structContext({ ID: 'abc', Name: 'first', Label: (k: unknown) => (k === 'com.x-y_z.x' ? 'X!' : '') }),
    structContext({ ID: 'def', Name: 'second-long-name', Label: () => '' }),
  ];
  const spec = {
    format: undefined,
    defaultTable: 'table {{.ID}}\t{{.Name}}',
    headers: { ID: 'ID', Name: 'NAME' },
  };
  assert.equal(renderList(spec, items), 'ID        NAME\nabc       first\ndef       second-long-name\n');
  assert.equal(
    renderList({ ...spec, format: 'table {{.Name}}\\t{{.Label "com.x-y_z.x"}}' }, items),
    'NAME               x\nfirst              X!\nsecond-long-name   \n',
  );
  assert.equal(
    renderList({ ...spec, format: 'json' }, items),
    '{"ID":"abc","Name":"first"}\n{"ID":"def","Name":"second-long-name"}\n',
  );
  assert.equal(
    renderList({ ...spec, format: '{{.ID}}\\t{{upper .Name}}' }, items),
    'abc\tFIRST\ndef\tSECOND-LONG-NAME\n',
  );
  assert.equal(renderList(spec, items, true), 'abc\ndef\n');
  assert.equal(renderList(spec, []), 'ID        NAME\n');
  assert.throws(() => renderList({ ...spec, format: '{{.Nope}}' }, items), CommandError);
});

test('tabwriter: Go column blocks, minimum width, cells counted in characters', () => {
  assert.equal(
    tabwrite('a\tb\tc\nlonger-cell\tx\ty\n'),
    'a             b         c\nlonger-cell   x         y\n',
  );
  // A line without tabs ends the column block: the next block is aligned on its own.
  assert.equal(tabwrite('aaaaaaaaaaaaaaa\tb\nbreak\nc\td\n'), 'aaaaaaaaaaaaaaa   b\nbreak\nc         d\n');
  assert.equal(tabwrite('é\tx\nab\ty\n', { minWidth: 0, padding: 1 }), 'é  x\nab y\n');
  assert.equal(tabwrite('a\t\tc\n'), 'a                   c\n');
});

test('sizes and durations read like docker (go-units)', () => {
  assert.equal(humanSizeWithPrecision(4261550, 3), '4.26MB');
  assert.equal(humanSizeWithPrecision(999999, 3), '1e+03kB');
  assert.equal(humanSize(4261550), '4.262MB');
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(1000), '1kB');
  assert.equal(humanSize(123456), '123.5kB');
  assert.equal(bytesSize(25769803776), '24GiB');
  assert.equal(bytesSize(1048576 * 1.5), '1.5MiB');
  assert.equal(formatG(0.0001234, 3), '0.000123');
  assert.equal(formatG(0.00001234, 3), '1.23e-05');
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(1000), '1 second');
  assert.equal(humanDuration(59_000), '59 seconds');
  assert.equal(humanDuration(60_000), 'About a minute');
  assert.equal(humanDuration(5 * 60_000), '5 minutes');
  assert.equal(humanDuration(3_600_000), 'About an hour');
  assert.equal(humanDuration(47 * 3_600_000), '47 hours');
  assert.equal(humanDuration(3 * 86_400_000), '3 days');
  assert.equal(humanDuration(20 * 86_400_000), '2 weeks');
  assert.equal(humanDuration(90 * 86_400_000), '3 months');
  assert.equal(humanDuration(3 * 365 * 86_400_000), '3 years');
  assert.equal(goDuration(0), '0s');
  assert.equal(goDuration(90e9), '1m30s');
  assert.equal(goDuration(3723e9), '1h2m3s');
  assert.equal(goDuration(1.5e9), '1.5s');
  assert.equal(goDuration(300e6), '300ms');
  assert.equal(ellipsis('abcdefgh', 5), 'abcd…');
  assert.equal(ellipsis('abc', 5), 'abc');
});

test('flag values: memory, durations, CPUs, timestamps, filters', () => {
  assert.equal(ramInBytes('1g'), 1073741824);
  assert.equal(ramInBytes('512m'), 536870912);
  assert.equal(ramInBytes('1.5GiB'), 1610612736);
  assert.equal(ramInBytes('100'), 100);
  assert.throws(() => ramInBytes('abc'), /invalid size: 'abc'/);
  assert.equal(fromHumanSize('1k'), 1000);
  assert.equal(memSwapBytes('-1'), -1);
  assert.equal(parseGoDuration('5s'), 5e9);
  assert.equal(parseGoDuration('1m30s'), 90e9);
  assert.equal(parseGoDuration('1.5h'), 5400e9);
  assert.equal(parseGoDuration('300ms'), 3e8);
  // Go's micro sign and Greek mu both spell microseconds.
  assert.equal(parseGoDuration('2\u00b5s'), 2000);
  assert.equal(parseGoDuration('3\u03bcs'), 3000);
  assert.equal(parseGoDuration('0'), 0);
  assert.throws(() => parseGoDuration('5'), /missing unit/);
  assert.throws(() => parseGoDuration('abc'), /invalid duration "abc"/);
  assert.equal(parseNanoCpus('1.5'), 1_500_000_000);
  assert.equal(parseNanoCpus('0.000000001'), 1);
  assert.throws(() => parseNanoCpus('0.0000000001'), /too precise/);
  const now = Date.UTC(2024, 0, 2, 3, 4, 5);
  assert.equal(getTimestamp('10m', now), String(now / 1000 - 600));
  assert.equal(getTimestamp('2024-01-02T03:04:05Z', now), '1704164645.000000000');
  assert.equal(getTimestamp('2024-01-02T03:04:05.5+01:00', now), '1704161045.500000000');
  assert.equal(getTimestamp('1700000000.5', now), '1700000000.5');
  assert.throws(() => getTimestamp('yesterday', now), /failed to parse value as time or duration/);
  assert.equal(
    filtersJson(['status=running', 'name=b', 'name=a']),
    '{"name":{"a":true,"b":true},"status":{"running":true}}',
  );
  assert.equal(filtersJson([]), undefined);
});

test('ports, restart policies and ulimits parse as docker does', () => {
  assert.deepEqual(parsePortSpecs(['8080:80', '127.0.0.1::53/udp', '9000-9001:90-91']), {
    exposed: { '80/tcp': {}, '53/udp': {}, '90/tcp': {}, '91/tcp': {} },
    bindings: {
      '80/tcp': [{ HostIp: '', HostPort: '8080' }],
      '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }],
      '90/tcp': [{ HostIp: '', HostPort: '9000' }],
      '91/tcp': [{ HostIp: '', HostPort: '9001' }],
    },
  });
  assert.throws(() => parsePortSpecs(['80-81:90-99']), /invalid ranges/);
  assert.deepEqual(parseRestartPolicy('on-failure:3'), { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.deepEqual(parseRestartPolicy(''), { Name: '', MaximumRetryCount: 0 });
  assert.throws(() => parseRestartPolicy(':3'), /no policy provided before colon/);
  assert.deepEqual(parseUlimit('nofile=1024:2048'), { Name: 'nofile', Hard: 2048, Soft: 1024 });
  assert.deepEqual(parseUlimit('nproc=-1'), { Name: 'nproc', Hard: -1, Soft: -1 });
});

test('docker ps details: port groups, natural sort, sizes in templates', () => {
  assert.equal(
    displayablePorts([
      { PrivatePort: 445, Type: 'tcp' },
      { PrivatePort: 443, Type: 'tcp' },
      { PrivatePort: 444, Type: 'tcp' },
      { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 80, Type: 'tcp' },
      { IP: '0.0.0.0', PrivatePort: 81, PublicPort: 81, Type: 'tcp' },
      { IP: '::', PrivatePort: 53, PublicPort: 5353, Type: 'udp' },
    ]),
    '0.0.0.0:80-81->80-81/tcp, 443-445/tcp, [::]:5353->53/udp',
  );
  const sorted = ['vol10', 'vol9', 'Vol1', 'a', '80/tcp -> [::]:80', '80/tcp -> 0.0.0.0:80'].sort(
    naturalCompare,
  );
  assert.deepEqual(sorted, ['80/tcp -> 0.0.0.0:80', '80/tcp -> [::]:80', 'Vol1', 'a', 'vol9', 'vol10']);
  assert.equal(formatUsesSize('{{.Names}}'), false);
  assert.equal(formatUsesSize('table {{.Size}}'), true);
  assert.equal(formatUsesSize('{{json .}}'), true);
  assert.equal(formatUsesSize('json'), true);
});

test('stats: CPU from the precpu delta, memory without inactive cache', () => {
  const entry: StatsEntry = {
    container: 'web',
    id: '',
    name: '',
    cpuPercent: 0,
    memory: 0,
    memoryLimit: 0,
    memoryPercent: 0,
    netRx: 0,
    netTx: 0,
    blockRead: 0,
    blockWrite: 0,
    pids: 0,
    invalid: false,
  };
  computeStats(entry, {
    id: 'a'.repeat(64),
    name: '/web',
    cpu_stats: { cpu_usage: { total_usage: 300 }, system_cpu_usage: 2000, online_cpus: 4 },
    precpu_stats: { cpu_usage: { total_usage: 100 }, system_cpu_usage: 1000 },
    memory_stats: { usage: 2 * 1048576, limit: 8 * 1048576, stats: { inactive_file: 1048576 } },
    networks: { eth0: { rx_bytes: 1000, tx_bytes: 2000 }, eth1: { rx_bytes: 1, tx_bytes: 2 } },
    blkio_stats: {
      io_service_bytes_recursive: [
        { op: 'Read', value: 10 },
        { op: 'Write', value: 20 },
      ],
    },
    pids_stats: { current: 7 },
  });
  const context = statsContext(entry, true) as Record<string, string>;
  assert.equal(context.CPUPerc, '80.00%');
  assert.equal(context.MemUsage, '1MiB / 8MiB');
  assert.equal(context.MemPerc, '12.50%');
  assert.equal(context.NetIO, '1kB / 2kB');
  assert.equal(context.BlockIO, '10B / 20B');
  assert.equal(context.PIDs, '7');
  assert.equal(context.Name, 'web');
  assert.equal(context.ID, 'aaaaaaaaaaaa');
  entry.invalid = true;
  assert.equal((statsContext(entry, true) as Record<string, string>).MemUsage, '-- / --');
});

test('json re-indentation keeps the daemon bytes (escapes, numbers, empty containers)', () => {
  const raw = '{"a":"\\u003cb\\u003e","n":1.0,"e":{},"l":[],"x":[1,{"y":null}]}';
  assert.equal(
    indentJson(raw),
    '{\n    "a": "\\u003cb\\u003e",\n    "n": 1.0,\n    "e": {},\n    "l": [],\n    "x": [\n        1,\n        {\n            "y": null\n        }\n    ]\n}',
  );
});

test('progress bars: docker layout by terminal width, counts and units', () => {
  const now = 1000;
  assert.equal(
    progressString({ current: 1000000, total: 3400000 }, 200, now),
    '[==============>                                    ]      1MB/3.4MB',
  );
  assert.equal(progressString({ current: 1000000, total: 3400000 }, 80, now), '     1MB/3.4MB');
  assert.equal(
    progressString({ current: 1000000, total: 3400000, start: 990 }, 80, now),
    '     1MB/3.4MB 24s',
  );
  assert.equal(progressString({ current: 5, total: 3, units: 'layers' }, 80, now), '5 layers');
  assert.equal(progressString({ current: 2048 }, 80, now), ' 2.048kB');
  assert.equal(progressString({}, 80, now), '');
});

test('JSON message streams may split objects across chunks', async () => {
  const stream = new PassThrough();
  const got: unknown[] = [];
  const reading = (async () => {
    for await (const message of readJsonMessages(stream)) got.push(message);
  })();
  stream.write('{"status":"a"}\r\n{"sta');
  stream.write('tus":"b {x}"}{"status":"c"}');
  stream.end();
  await reading;
  assert.deepEqual(got, [{ status: 'a' }, { status: 'b {x}' }, { status: 'c' }]);
});

test('stdio: multiplexed frames split across reads; detach keys; docker key syntax', () => {
  const out = new PassThrough();
  const err = new PassThrough();
  const demux = new FrameDemuxer({ stdout: out, stderr: err });
  const frames = Buffer.concat([
    Buffer.from([1, 0, 0, 0, 0, 0, 0, 3]),
    Buffer.from('abc'),
    Buffer.from([2, 0, 0, 0, 0, 0, 0, 2]),
    Buffer.from('!!'),
  ]);
  demux.push(frames.subarray(0, 5));
  demux.push(frames.subarray(5, 12));
  demux.push(frames.subarray(12));
  assert.equal(String(out.read()), 'abc');
  assert.equal(String(err.read()), '!!');
  assert.throws(
    () => new FrameDemuxer({ stdout: out, stderr: err }).push(Buffer.from([9, 9, 9, 9, 0, 0, 0, 0])),
    /Unrecognized input header/,
  );

  assert.deepEqual(parseDetachKeys('ctrl-p,ctrl-q'), [16, 17]);
  assert.deepEqual(parseDetachKeys('a,ctrl-@,ctrl-\\'), [97, 0, 28]);
  assert.throws(() => parseDetachKeys('ctrl-1'), /Unknown character/);
  const watcher = new DetachWatcher([16, 17]);
  assert.deepEqual(watcher.feed(Buffer.from([104, 16, 105])), {
    forward: Buffer.from([104, 16, 105]),
    detached: false,
  });
  assert.deepEqual(watcher.feed(Buffer.from([16])), { forward: Buffer.alloc(0), detached: false });
  assert.deepEqual(watcher.feed(Buffer.from([17, 120])), { forward: Buffer.alloc(0), detached: true });
});

test('stdio: a session that carries no output never makes the local output streams', async () => {
  const made: string[] = [];
  const output = (name: string): PassThrough => {
    made.push(name);
    return new PassThrough();
  };
  const streams = {
    get stdin() {
      made.push('stdin');
      return new PassThrough();
    },
    get stdout() {
      return output('stdout');
    },
    get stderr() {
      return output('stderr');
    },
  } as Streams;
  const ctx = new CliContext(streams, {}, { hosts: [], tls: false, tlsVerify: false, debug: false });
  const quiet = new PassThrough();
  quiet.end();
  const options = { tty: false, stdin: false, detachKeys: 'ctrl-p,ctrl-q' };
  assert.deepEqual(await runSession(ctx, quiet, options), { detached: false });
  assert.deepEqual(made, []);
  const talking = new PassThrough();
  talking.end(Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 2]), Buffer.from('!!')]));
  assert.deepEqual(await runSession(ctx, talking, options), { detached: false });
  assert.deepEqual(made, ['stderr'], 'only the stream that was written to');
});

test('hosts, queries and cp arguments', () => {
  assert.deepEqual(parseHost('unix:///run/berth/berth.sock', false), { socketPath: '/run/berth/berth.sock' });
  assert.deepEqual(parseHost('tcp://10.0.0.1', false), { hostname: '10.0.0.1', port: 2375 });
  assert.deepEqual(parseHost('tcp://10.0.0.1', true), { hostname: '10.0.0.1', port: 2376 });
  assert.deepEqual(parseHost('tcp://[::1]:1234', true), { hostname: '::1', port: 1234 });
  assert.throws(() => parseHost('ssh://me@host', false), /unix:\/\/ and tcp:\/\//);
  assert.equal(encodeQuery({ b: '2', a: 'x y~*', c: undefined, d: ['1', '2'] }), '?a=x+y~%2A&b=2&d=1&d=2');
  assert.deepEqual(splitCpArg('web:/etc/hosts'), { container: 'web', path: '/etc/hosts' });
  assert.deepEqual(splitCpArg('/tmp/a:b'), { path: '/tmp/a:b' });
  assert.deepEqual(splitCpArg('./c:d'), { path: './c:d' });
  assert.deepEqual(splitCpArg('-'), { path: '-' });
});
