import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError, conflict } from '../../../src/common/errors.js';
import { ExecFailedError } from '../../../src/runtime/shim-process.js';
import { execFailureMessage, startFailure } from '../../../src/engine/start-error.js';

test('a program that cannot run is a 400 with dockerd message and exit code 127 or 126', () => {
  const missing = startFailure(
    new ExecFailedError(2, 'exec: "nosuchcmd": executable file not found in $PATH'),
    0,
  );
  assert.ok(missing.error instanceof BerthError);
  assert.equal(missing.error.kind, 'invalid-argument');
  assert.equal(
    missing.error.message,
    'failed to create task for container: OCI runtime create failed: unable to start container process: ' +
      'exec: "nosuchcmd": executable file not found in $PATH',
  );
  assert.equal(missing.exitCode, 127);
  assert.equal(
    startFailure(new ExecFailedError(13, 'exec: "/etc/passwd": permission denied'), 0).exitCode,
    126,
  );
});

test('a directory gets EACCES text appended, as dockerd does for clients that look for it', () => {
  const dir = new ExecFailedError(21, 'exec: "/etc": is a directory');
  assert.equal(
    execFailureMessage('OCI runtime exec failed: exec failed: ', dir),
    'OCI runtime exec failed: exec failed: unable to start container process: exec: "/etc": is a directory: permission denied',
  );
  assert.equal(startFailure(dir, 0).exitCode, 126);
});

test('other failures keep their error and get exit code 128 when none was set', () => {
  const other = conflict('something else');
  assert.deepEqual(startFailure(other, 0), { error: other, exitCode: 128 });
  assert.deepEqual(startFailure(other, 137), { error: other, exitCode: 137 });
});
