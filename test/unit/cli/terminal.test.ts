/**
 * `-it` sessions with a pretend terminal: raw mode on and off again, the container's TTY sized to
 * the local one (at start and on SIGWINCH), keystrokes forwarded as they come, detach keys ending
 * the session without stopping the container.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { CONTAINER_ID, EXEC_ID, FakeDockerApi } from '../../helpers/fake-docker-api.js';
import { runBerth } from './harness.js';

class FakeTerminal extends PassThrough {
  readonly isTTY = true;
  readonly modes: boolean[] = [];
  setRawMode(mode: boolean): this {
    this.modes.push(mode);
    return this;
  }
}

/** Echoes the session like a shell would; calls `onInput` with everything received so far. */
function echoingSession(
  onInput: (received: string) => void,
): (req: unknown, socket: import('node:stream').Duplex) => void {
  return (_req, socket) => {
    let received = '';
    socket.write('$ ');
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      socket.write(chunk);
      onInput(received);
    });
    socket.on('error', () => undefined);
  };
}

test('run -it: raw mode, console size, resize, typed bytes forwarded, ctrl-p ctrl-q detaches', async (t) => {
  const fake = await FakeDockerApi.start();
  t.after(() => fake.close());
  const terminal = new FakeTerminal();
  let received = '';
  fake.hijack(
    'POST',
    /^\/containers\/([^/]+)\/attach$/,
    echoingSession((text) => {
      received = text;
      // Once the command is typed, the window changes size, then the user detaches.
      if (text === 'ls\r') {
        process.emit('SIGWINCH', 'SIGWINCH');
        setTimeout(() => terminal.write(Buffer.from([0x10, 0x11])), 20);
      }
    }),
  );
  setTimeout(() => terminal.write('ls\r'), 50);
  const result = await runBerth(fake.host, ['run', '-it', 'busybox', 'sh'], {
    stdinStream: terminal,
    terminalWidth: 100,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(terminal.modes, [true, false], 'raw mode is set, then restored');
  assert.equal(received, 'ls\r', 'the detach keys are not sent to the container');
  assert.equal(result.stdout, '$ ls\r');
  const create = fake.calls.find((r) => r.path === '/containers/create')?.json as Record<string, unknown>;
  assert.equal(create.Tty, true);
  assert.equal(create.OpenStdin, true);
  assert.deepEqual((create.HostConfig as Record<string, unknown>).ConsoleSize, [40, 100]);
  const resizes = fake.calls.filter((r) => r.path === `/containers/${CONTAINER_ID}/resize`);
  assert.ok(resizes.length >= 2, 'a resize at start and one on SIGWINCH');
  assert.equal(resizes[0]?.query.toString(), 'h=40&w=100');
  assert.equal(
    fake.calls.some((r) => r.path.endsWith('/kill')),
    false,
    'no signal is sent to a TTY container',
  );
});

test('exec -it with custom detach keys resizes the exec and reports detaching as success', async (t) => {
  const fake = await FakeDockerApi.start();
  t.after(() => fake.close());
  const terminal = new FakeTerminal();
  fake.hijack(
    'POST',
    /^\/exec\/([^/]+)\/start$/,
    echoingSession((text) => {
      if (text.endsWith('x')) terminal.write('ab');
    }),
  );
  setTimeout(() => terminal.write('x'), 50);
  const result = await runBerth(fake.host, ['exec', '-it', '--detach-keys', 'a,b', 'web', 'sh'], {
    stdinStream: terminal,
    terminalWidth: 120,
  });
  assert.equal(result.code, 0, result.stderr);
  const body = fake.calls.find((r) => r.path === '/containers/web/exec')?.json as Record<string, unknown>;
  assert.equal(body.DetachKeys, 'a,b');
  assert.deepEqual(body.ConsoleSize, [40, 120]);
  const start = fake.calls.find((r) => r.path === `/exec/${EXEC_ID}/start`)?.json;
  assert.deepEqual(start, { Detach: false, Tty: true, ConsoleSize: [40, 120] });
  assert.ok(
    fake.calls.some((r) => r.path === `/exec/${EXEC_ID}/resize` && r.query.toString() === 'h=40&w=120'),
  );
  assert.deepEqual(terminal.modes, [true, false]);
});

test('without a TTY, run -i forwards signals to the container (--sig-proxy)', async (t) => {
  const fake = await FakeDockerApi.start();
  t.after(() => fake.close());
  const input = new PassThrough();
  const listenersBefore = process.listenerCount('SIGTERM');
  fake.hijack('POST', /^\/containers\/([^/]+)\/attach$/, (_req, socket) => {
    socket.on('error', () => undefined);
    // The user presses ^C-like signals until the container has been told (bounded), then it ends.
    let tries = 0;
    const timer = setInterval(() => {
      if (++tries > 250) clearInterval(timer);
      process.emit('SIGTERM', 'SIGTERM');
    }, 20);
    fake.route('POST', /\/kill$/, () => {
      clearInterval(timer);
      setTimeout(() => socket.end(), 10);
      return { status: 204 };
    });
  });
  const result = await runBerth(fake.host, ['run', '-i', 'busybox', 'sleep', '100'], { stdinStream: input });
  input.end();
  assert.equal(result.code, 0, result.stderr);
  const kill = fake.calls.find((r) => r.path.endsWith('/kill'));
  assert.equal(kill?.query.get('signal'), 'SIGTERM');
  assert.equal(process.listenerCount('SIGTERM'), listenersBefore, 'signal handlers are removed afterwards');
});
