import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SOCKET, formatAddress, parseHost } from '../../../src/daemon/hosts.js';

test('unix, tcp and fd addresses parse like dockerd -H', () => {
  assert.deepEqual(parseHost('', false), { kind: 'unix', path: DEFAULT_SOCKET });
  assert.deepEqual(parseHost('unix://', false), { kind: 'unix', path: '/run/berth/berth.sock' });
  assert.deepEqual(parseHost('unix:///tmp/b.sock', false), { kind: 'unix', path: '/tmp/b.sock' });
  assert.deepEqual(parseHost('tcp://0.0.0.0:2376', true), { kind: 'tcp', host: '0.0.0.0', port: 2376 });
  assert.deepEqual(parseHost('tcp://127.0.0.1', true), { kind: 'tcp', host: '127.0.0.1', port: 2376 });
  assert.deepEqual(parseHost('tcp://127.0.0.1', false), { kind: 'tcp', host: '127.0.0.1', port: 2375 });
  assert.deepEqual(parseHost('tcp://:2380', false), { kind: 'tcp', host: '127.0.0.1', port: 2380 });
  assert.deepEqual(parseHost('localhost:2380', false), { kind: 'tcp', host: 'localhost', port: 2380 });
  assert.deepEqual(parseHost('tcp://[::1]:2376', true), { kind: 'tcp', host: '::1', port: 2376 });
  assert.deepEqual(parseHost('fd://', false), { kind: 'fd', name: '' });
  assert.deepEqual(parseHost('fd://berth.socket', false), { kind: 'fd', name: 'berth.socket' });
  assert.deepEqual(parseHost('fd://3', false), { kind: 'fd', name: '3' });
});

test('bad addresses are refused with the reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['unix://relative.sock', /the socket path must be absolute/],
    ['udp://1.2.3.4:1', /unsupported protocol udp/],
    ['ssh://host', /unsupported protocol ssh/],
    ['tcp://1.2.3.4:99999', /port 99999 is out of range/],
    ['tcp://1.2.3.4:0', /port 0 is out of range/],
    ['tcp://1.2.3.4:http', /bad port "http"/],
    ['tcp://1.2.3.4:2375/path', /takes no path/],
    ['tcp://::1:2375', /put an IPv6 address in brackets/],
    ['tcp://[::1', /unclosed \[/],
    ['tcp://[1.2.3.4]:1', /is not an IPv6 address/],
    ['tcp://bad_host:1', /bad host name bad_host/],
    ['fd://a/b', /bad descriptor name/],
  ];
  for (const [value, message] of cases) assert.throws(() => parseHost(value, false), message, value);
});

test('addresses format back', () => {
  for (const text of ['unix:///tmp/x.sock', 'tcp://127.0.0.1:2376', 'tcp://[::1]:2376', 'fd://', 'fd://x']) {
    assert.equal(formatAddress(parseHost(text, true)), text);
  }
});
