import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  copyHistoryText,
  exposeHistoryText,
  nopCreatedBy,
  nopStringCreatedBy,
  setEnv,
  shellHistoryText,
} from '../../../src/build/history.js';
import type { ContainerConfig } from '../../../src/oci/image-spec.js';

// Expected strings are what dockerd 20.10's classic builder wrote for the same instructions.

test('metadata steps name the current shell, default /bin/sh -c', () => {
  assert.equal(nopCreatedBy(undefined, 'CMD ["--serve"]'), '/bin/sh -c #(nop)  CMD ["--serve"]');
  assert.equal(nopCreatedBy(['/bin/sh', '-ec'], 'CMD ["--serve"]'), '/bin/sh -ec #(nop)  CMD ["--serve"]');
  assert.equal(nopStringCreatedBy(['/bin/sh', '-ec'], 'WORKDIR /app'), '/bin/sh -ec #(nop) WORKDIR /app');
});

test('SHELL is recorded unquoted, EXPOSE sorted', () => {
  assert.equal(shellHistoryText(['/bin/sh', '-ec']), 'SHELL [/bin/sh -ec]');
  assert.equal(exposeHistoryText(['8080', '53/udp']), 'EXPOSE 53/udp 8080');
});

test('COPY names neither --from nor a space after --chown, like dockerd', () => {
  assert.equal(copyHistoryText('COPY', {}, 'dir:abc', '/app/out/'), 'COPY dir:abc in /app/out/ ');
  assert.equal(
    copyHistoryText('COPY', { chown: '1000:1000' }, 'dir:abc', '/app/data'),
    'COPY --chown=1000:1000dir:abc in /app/data ',
  );
  assert.equal(
    copyHistoryText('ADD', { chown: '1', chmod: '600' }, 'file:abc', '/f'),
    'ADD --chown=1--chmod=600 file:abc in /f ',
  );
});

test('ENV replaces an existing variable where it stands and appends a new one', () => {
  const config: ContainerConfig = { Env: ['PATH=/bin', 'HOME=/root'] };
  setEnv(config, 'APP_HOME', '/app');
  setEnv(config, 'PATH', '/app/bin:/bin');
  assert.deepEqual(config.Env, ['PATH=/app/bin:/bin', 'HOME=/root', 'APP_HOME=/app']);
  setEnv(config, 'HOME', '/home');
  assert.deepEqual(config.Env, ['PATH=/app/bin:/bin', 'HOME=/home', 'APP_HOME=/app']);
});
