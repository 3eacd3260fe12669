import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { checkCreateBody, checkExecBody } from '../../../src/engine/create-body.js';

const refused = (body: unknown, message: RegExp): void =>
  assert.throws(
    () => checkCreateBody(body),
    (err: unknown) =>
      err instanceof BerthError && err.kind === 'invalid-argument' && message.test(err.message),
  );

test('fields of the wrong JSON type are refused with Go unmarshalling messages', () => {
  refused(
    { Image: 1.5 },
    /cannot unmarshal number into Go struct field ContainerConfigWrapper\.Image of type string/,
  );
  refused({ Image: 'busybox', Entrypoint: {} }, /Entrypoint of type strslice\.StrSlice/);
  refused(
    { Image: 'busybox', Env: [false] },
    /cannot unmarshal boolean into Go struct field ContainerConfigWrapper\.Env of type string/,
  );
  refused({ Image: 'busybox', Env: 'A=1' }, /Env of type \[\]string/);
  refused({ Image: 'busybox', Labels: { a: 1 } }, /Labels of type map\[string\]string/);
  refused({ Image: 'busybox', HostConfig: { NetworkMode: [1] } }, /HostConfig\.NetworkMode of type string/);
  refused({ Image: 'busybox', HostConfig: { Memory: 'lots' } }, /HostConfig\.Memory of type int64/);
  refused({ Image: 'busybox', HostConfig: { Mounts: [1] } }, /HostConfig\.Mounts/);
  refused(null, /Config cannot be empty/);
  refused([], /Config cannot be empty/);
});

test('good bodies pass; string commands become arrays; nulls are zero values', () => {
  const body = checkCreateBody({
    Image: 'busybox',
    Cmd: 'echo hi',
    Entrypoint: null,
    Env: ['A=1'],
    HostConfig: { Binds: ['/a:/b'], Memory: 1024, Privileged: false, Sysctls: { 'net.x': '1' }, Dns: null },
  });
  assert.deepEqual(body.Cmd, ['echo hi']);
  assert.equal(body.Entrypoint, null);
  assert.deepEqual(body.HostConfig?.Binds, ['/a:/b']);
});

test('exec bodies of the wrong JSON types are refused the same way, not crashed on', () => {
  const refusedExec = (body: unknown, message: RegExp): void =>
    assert.throws(
      () => checkExecBody(body),
      (err: unknown) =>
        err instanceof BerthError && err.kind === 'invalid-argument' && message.test(err.message),
    );
  refusedExec({ Cmd: {} }, /cannot unmarshal object into Go struct field ExecConfig\.Cmd of type \[\]string/);
  refusedExec({ Cmd: 1.5 }, /cannot unmarshal number into Go struct field ExecConfig\.Cmd/);
  refusedExec({ Cmd: ['sh'], Env: [false] }, /ExecConfig\.Env of type string/);
  refusedExec({ Cmd: ['sh'], Tty: 9 }, /ExecConfig\.Tty of type bool/);
  refusedExec(null, /exec configuration is missing/);
  assert.deepEqual(checkExecBody({ Cmd: ['sh', '-c', 'true'], Tty: false }), {
    Cmd: ['sh', '-c', 'true'],
    Tty: false,
  });
});
