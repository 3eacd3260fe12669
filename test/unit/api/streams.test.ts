import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { BerthError } from '../../../src/common/errors.js';
import {
  encodeFrame,
  encodeJsonMessage,
  FrameDecoder,
  FrameWriter,
  hijackResponseHead,
  humanSize,
  JsonMessageWriter,
  MediaType,
  progressText,
  readFrames,
  StdStream,
  streamMediaType,
  type ChunkSink,
} from '../../../src/api/streams.js';

test('a frame is type, three zero bytes, big-endian length, payload', () => {
  assert.deepEqual([...encodeFrame(StdStream.Stdout, 'hi\n')], [1, 0, 0, 0, 0, 0, 0, 3, 0x68, 0x69, 0x0a]);
  assert.deepEqual([...encodeFrame(StdStream.Stderr, Buffer.alloc(0))], [2, 0, 0, 0, 0, 0, 0, 0]);
  const big = encodeFrame(StdStream.Stdin, Buffer.alloc(0x010203, 7));
  assert.deepEqual([...big.subarray(0, 8)], [0, 0, 0, 0, 0, 0x01, 0x02, 0x03]);
  assert.equal(big.length, 8 + 0x010203);
  assert.equal(encodeFrame(StdStream.Systemerr, 'boom')[0], 3);
});

test('the decoder reassembles frames split at any byte', () => {
  const stream = Buffer.concat([
    encodeFrame(StdStream.Stdout, 'out'),
    encodeFrame(StdStream.Stderr, 'err!'),
    encodeFrame(StdStream.Stdout, ''),
  ]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const decoder = new FrameDecoder();
    const frames = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
    decoder.finish();
    assert.deepEqual(
      frames.map((f) => [f.stream, f.payload.toString()]),
      [
        [1, 'out'],
        [2, 'err!'],
        [1, ''],
      ],
      `cut at ${cut}`,
    );
  }
});

test('the decoder reports a cut stream and a bad header', () => {
  const decoder = new FrameDecoder();
  decoder.push(encodeFrame(StdStream.Stdout, 'abcdef').subarray(0, 10));
  assert.equal(decoder.pending, 10);
  assert.throws(
    () => decoder.finish(),
    (err: unknown) => err instanceof BerthError && /ended inside a frame/.test(err.message),
  );
  assert.throws(
    () => new FrameDecoder().push(Buffer.from([4, 0, 0, 0, 0, 0, 0, 0])),
    /unrecognized multiplexed stream header 04000000/,
  );
  assert.throws(() => new FrameDecoder().push(Buffer.from([1, 0, 1, 0, 0, 0, 0, 0])), /unrecognized/);
});

test('readFrames yields the frames of a byte stream', async () => {
  const bytes = Buffer.concat([encodeFrame(1, 'a'), encodeFrame(2, 'b')]);
  const chunks = [bytes.subarray(0, 3), bytes.subarray(3, 12), bytes.subarray(12)];
  const frames = [];
  for await (const frame of readFrames(Readable.from(chunks)))
    frames.push(`${frame.stream}:${frame.payload}`);
  assert.deepEqual(frames, ['1:a', '2:b']);
});

test('FrameWriter frames each write as one stream', async () => {
  const target = new PassThrough();
  const out: Buffer[] = [];
  target.on('data', (chunk: Buffer) => out.push(chunk));
  const writer = new FrameWriter(target, StdStream.Stderr);
  writer.write('x');
  writer.write(Buffer.alloc(0));
  await new Promise<void>((resolve) => writer.end('yz', resolve));
  assert.deepEqual(Buffer.concat(out), Buffer.concat([encodeFrame(2, 'x'), encodeFrame(2, 'yz')]));
});

test('media types: multiplexed only without TTY and from API 1.42', () => {
  assert.equal(streamMediaType('1.42', true), MediaType.MultiplexedStream);
  assert.equal(streamMediaType('1.50', true), 'application/vnd.docker.multiplexed-stream');
  assert.equal(streamMediaType('1.41', true), 'application/vnd.docker.raw-stream');
  assert.equal(streamMediaType('1.50', false), MediaType.RawStream);
});

test('the hijack head is byte for byte what dockerd writes', () => {
  const headers = { Server: 'Berth/0.1.0 (linux)', 'Api-Version': '1.50' };
  assert.equal(
    hijackResponseHead(true, MediaType.MultiplexedStream, headers).toString('latin1'),
    'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n' +
      'Connection: Upgrade\r\nUpgrade: tcp\r\nApi-Version: 1.50\r\nServer: Berth/0.1.0 (linux)\r\n\r\n',
  );
  assert.equal(
    hijackResponseHead(false, MediaType.RawStream, {}).toString('latin1'),
    'HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n',
  );
});

test('JSON messages use Go field order and leave empty fields out', () => {
  assert.equal(
    encodeJsonMessage({
      id: 'abc',
      status: 'Downloading',
      progress: '[>] 1B/2B',
      progressDetail: { total: 2, current: 1 },
    }),
    '{"status":"Downloading","progressDetail":{"current":1,"total":2},"progress":"[>] 1B/2B","id":"abc"}\n',
  );
  assert.equal(
    encodeJsonMessage({ status: 'Pulling fs layer', progressDetail: {}, id: 'l1' }),
    '{"status":"Pulling fs layer","progressDetail":{},"id":"l1"}\n',
  );
  assert.equal(
    encodeJsonMessage({ error: 'boom', errorDetail: { message: 'boom' } }),
    '{"errorDetail":{"message":"boom"},"error":"boom"}\n',
  );
  assert.equal(
    encodeJsonMessage({ errorDetail: { code: 1, message: 'x' }, error: 'x' }),
    '{"errorDetail":{"code":1,"message":"x"},"error":"x"}\n',
  );
  assert.equal(encodeJsonMessage({ stream: 'Step 1/2\n', status: '', id: '' }), '{"stream":"Step 1/2\\n"}\n');
  assert.equal(encodeJsonMessage({ aux: { ID: 'sha256:1' } }), '{"aux":{"ID":"sha256:1"}}\n');
});

test('sizes read like Docker HumanSize', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(1000), '1kB');
  assert.equal(humanSize(1536), '1.536kB');
  assert.equal(humanSize(32_412_345), '32.41MB');
  assert.equal(humanSize(999_950), '1000kB');
  assert.equal(humanSize(5e9), '5GB');
});

test('progress text: Docker bar and counts', () => {
  assert.equal(progressText({}), '');
  assert.equal(progressText({ current: 1500 }), ' 1.5kB'.padStart(8));
  assert.equal(
    progressText({ current: 50, total: 100 }),
    `[${'='.repeat(25)}>${' '.repeat(25)}]      50B/100B`,
  );
  assert.equal(progressText({ current: 100, total: 100 }), `[${'='.repeat(50)}>] ` + '    100B/100B');
  assert.equal(progressText({ current: 300, total: 100 }), `[${'='.repeat(50)}>] ` + '    300B');
  assert.equal(
    progressText({ current: 3, total: 10, units: 'layers' }),
    `[${'='.repeat(15)}>${' '.repeat(35)}] 3/10 layers`,
  );
  assert.equal(
    progressText({ current: 3, total: 10, hidecounts: true }),
    `[${'='.repeat(15)}>${' '.repeat(35)}] `,
  );
});

test('JsonMessageWriter writes status, progress, stream, aux and error lines', async () => {
  const lines: string[] = [];
  const sink: ChunkSink = { write: async (chunk) => lines.push(String(chunk)) > 0 };
  const writer = new JsonMessageWriter(sink);
  await writer.status('Pulling from library/busybox', 'latest');
  await writer.progress('l1', 'Downloading', { current: 1, total: 4 });
  await writer.stream('hello\n');
  await writer.aux({ ID: 'sha256:abc' });
  await writer.error('manifest unknown');
  assert.deepEqual(lines, [
    '{"status":"Pulling from library/busybox","id":"latest"}\n',
    `{"status":"Downloading","progressDetail":{"current":1,"total":4},"progress":"[============>${' '.repeat(38)}]       1B/4B","id":"l1"}\n`,
    '{"stream":"hello\\n"}\n',
    '{"aux":{"ID":"sha256:abc"}}\n',
    '{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\n',
  ]);
});
