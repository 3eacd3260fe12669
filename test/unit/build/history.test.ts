import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  copyHistoryText,
  exposeHistoryText,
  goDuration,
  goQuote,
  goQuoteRune,
  healthcheckHistoryText,
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

test("HEALTHCHECK is Go's %q of the health config, as dockerd 20.10.24 wrote it", () => {
  assert.equal(
    healthcheckHistoryText({
      Test: ['CMD', '/bin/true'],
      Interval: 30e9,
      Timeout: 5e9,
      StartPeriod: 2e9,
      Retries: 3,
    }),
    'HEALTHCHECK &{["CMD" "/bin/true"] "30s" "5s" "2s" \'\\x03\'}',
  );
  assert.equal(
    healthcheckHistoryText({
      Test: ['CMD-SHELL', 'echo "hi there"'],
      Interval: 90e9,
      Timeout: 1.5e9,
      Retries: 65,
    }),
    'HEALTHCHECK &{["CMD-SHELL" "echo \\"hi there\\""] "1m30s" "1.5s" "0s" \'A\'}',
  );
  assert.equal(
    healthcheckHistoryText({ Test: ['NONE'] }),
    'HEALTHCHECK &{["NONE"] "0s" "0s" "0s" \'\\x00\'}',
  );
  assert.equal(
    healthcheckHistoryText({ Test: ['CMD', 'a', 'b\tc'] }),
    'HEALTHCHECK &{["CMD" "a" "b\\tc"] "0s" "0s" "0s" \'\\x00\'}',
  );
});

test('HEALTHCHECK --start-interval (newer Docker) is a fifth duration, printed only when set', () => {
  assert.equal(
    healthcheckHistoryText({ Test: ['CMD', 'true'], StartInterval: 1e9, Retries: 1 }),
    'HEALTHCHECK &{["CMD" "true"] "0s" "0s" "0s" "1s" \'\\x01\'}',
  );
});

test('Go duration strings and quoting', () => {
  assert.equal(goDuration(0), '0s');
  assert.equal(goDuration(1), '1ns');
  assert.equal(goDuration(1500), '1.5µs');
  assert.equal(goDuration(500e6), '500ms');
  assert.equal(goDuration(1.5e9), '1.5s');
  assert.equal(goDuration(3600e9), '1h0m0s');
  assert.equal(goDuration(7200.5e9), '2h0m0.5s');
  assert.equal(goDuration(-90e9), '-1m30s');
  assert.equal(
    goQuote('tab\there "q" \\ \u00e9 \u00a0 \u007f \u0001'),
    '"tab\\there \\"q\\" \\\\ é \\u00a0 \\x7f \\x01"',
  );
  assert.equal(goQuoteRune(39), "'\\''");
  assert.equal(goQuoteRune(34), "'\"'");
  assert.equal(goQuoteRune(10), "'\\n'");
});
