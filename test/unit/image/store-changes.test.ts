import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { applyChanges, splitWords } from '../../../src/image/store/changes.js';

test('each supported instruction sets its config field', () => {
  const config = applyChanges({ Env: ['PATH=/bin', 'KEEP=1'], Labels: { old: 'x' } }, [
    'CMD ["/bin/app", "--flag"]',
    'entrypoint /entry.sh --verbose',
    'ENV PATH=/usr/bin:/bin GREETING="hello world" EMPTY=',
    'ENV LEGACY some value',
    'EXPOSE 80 53/udp 8000-8002/tcp',
    'LABEL "com.example.name"="My App" version=1.0',
    'USER 1000:1000',
    'WORKDIR /srv',
    'WORKDIR app',
    'VOLUME ["/data", "/logs"]',
    'VOLUME /cache',
    'STOPSIGNAL SIGQUIT',
  ]);
  assert.deepEqual(config, {
    Cmd: ['/bin/app', '--flag'],
    Entrypoint: ['/bin/sh', '-c', '/entry.sh --verbose'],
    Env: ['PATH=/usr/bin:/bin', 'KEEP=1', 'GREETING=hello world', 'EMPTY=', 'LEGACY=some value'],
    ExposedPorts: { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {}, '8002/tcp': {} },
    Labels: { old: 'x', 'com.example.name': 'My App', version: '1.0' },
    User: '1000:1000',
    WorkingDir: '/srv/app',
    Volumes: { '/data': {}, '/logs': {}, '/cache': {} },
    StopSignal: 'SIGQUIT',
  });
});

test('several instructions may come in one change, one per line; the base is not modified', () => {
  const base = { Cmd: ['old'] };
  const config = applyChanges(base, ['CMD new\nUSER nobody\n']);
  assert.deepEqual(config, { Cmd: ['/bin/sh', '-c', 'new'], User: 'nobody' });
  assert.deepEqual(base, { Cmd: ['old'] });
});

test('words: quotes group, backslashes escape', () => {
  assert.deepEqual(splitWords(`a "b c" 'd "e"' f\\ g "h\\"i"`, 'x'), ['a', 'b c', 'd "e"', 'f g', 'h"i']);
  assert.deepEqual(splitWords('k="v w"x', 'x'), ['k=v wx']);
});

test('unsupported or malformed instructions are refused, naming the change', () => {
  const cases: Array<[string, RegExp]> = [
    ['RUN echo hi', /^invalid change "RUN echo hi": RUN is not supported/],
    ['FROM busybox', /FROM is not supported/],
    ['CMD', /CMD needs an argument/],
    ['EXPOSE 70000', /outside 1-65535/],
    ['EXPOSE http', /"http" is not a port/],
    ['EXPOSE 80/icmp', /"80\/icmp" is not a port/],
    ['ENV =x', /"=x" is not key=value/],
    ['ENV KEY', /"KEY" has no value/],
    ['LABEL a="unterminated', /unterminated " quote/],
    ['CMD [1, 2]', /must be an array of strings/],
    ['STOPSIGNAL not a signal', /is not a signal/],
  ];
  for (const [change, message] of cases) {
    assert.throws(
      () => applyChanges({}, [change]),
      (err: BerthError) => err.kind === 'invalid-argument' && message.test(err.message),
      change,
    );
  }
});
