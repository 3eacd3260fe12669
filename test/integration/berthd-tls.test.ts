import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BERTH_VERSION } from '../../src/common/version.js';
import { execOk } from '../helpers/exec.js';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { docker, freePort, startBerthd } from '../helpers/berthd.js';

interface Certificates {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl. */
async function makeCertificates(sandbox: Sandbox): Promise<Certificates> {
  const file = (name: string): string => join(sandbox.root, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await execOk('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    file('ca-key.pem'),
    '-out',
    file('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=berth test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const issue = async (name: string, subject: string, extensions: string): Promise<void> => {
    await execOk('openssl', [
      'req',
      ...ec,
      '-keyout',
      file(`${name}-key.pem`),
      '-out',
      file(`${name}.csr`),
      '-subj',
      subject,
    ]);
    await writeFile(file(`${name}.ext`), extensions);
    await execOk('openssl', [
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca-key.pem'),
      '-CAcreateserial',
      '-out',
      file(`${name}-cert.pem`),
      '-days',
      '2',
      '-extfile',
      file(`${name}.ext`),
    ]);
  };
  await issue('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await issue('client', '/CN=berth test client', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: file('ca.pem'),
    serverCert: file('server-cert.pem'),
    serverKey: file('server-key.pem'),
    clientCert: file('client-cert.pem'),
    clientKey: file('client-key.pem'),
  };
}

test('TCP with TLS serves clients with a certificate from the CA and refuses others', async (t) => {
  const sandbox = await createSandbox(t);
  const certs = await makeCertificates(sandbox);
  const port = await freePort();
  const host = `tcp://127.0.0.1:${port}`;
  await startBerthd(t, sandbox, {
    config: { tlsverify: true, tlscacert: certs.ca, tlscert: certs.serverCert, tlskey: certs.serverKey },
    args: ['-H', host],
  });

  const verified = await docker(sandbox, undefined, [
    '--tlsverify',
    '--tlscacert',
    certs.ca,
    '--tlscert',
    certs.clientCert,
    '--tlskey',
    certs.clientKey,
    '-H',
    host,
    'version',
    '--format',
    '{{.Server.Version}}',
  ]);
  assert.equal(verified.code, 0, verified.stderr);
  assert.equal(verified.stdout.trim(), BERTH_VERSION);
  const info = await docker(sandbox, undefined, [
    '--tlsverify',
    '--tlscacert',
    certs.ca,
    '--tlscert',
    certs.clientCert,
    '--tlskey',
    certs.clientKey,
    '-H',
    host,
    'info',
  ]);
  assert.equal(info.code, 0, info.stderr);
  assert.ok(!info.stderr.includes('API is accessible'), 'a verified TLS listener brings no warning');

  // The docker CLI without a client certificate is refused during the handshake.
  const anonymous = await docker(sandbox, undefined, [
    '--tlsverify',
    '--tlscacert',
    certs.ca,
    '-H',
    host,
    'version',
  ]);
  assert.notEqual(anonymous.code, 0);
  assert.match(anonymous.stderr, /tls: certificate required/);
  assert.ok(!anonymous.stdout.includes('Server:'));

  // Node's TLS client: served with the client certificate, refused without one or with one
  // that another CA signed.
  const ca = await readFile(certs.ca);
  const ping = (identity: { cert: Buffer; key: Buffer } | Record<string, never>): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, path: '/_ping', ca, ...identity, agent: false, timeout: 10_000 },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    });
  const identity = async (cert: string, key: string): Promise<{ cert: Buffer; key: Buffer }> => ({
    cert: await readFile(cert),
    key: await readFile(key),
  });
  assert.equal(await ping(await identity(certs.clientCert, certs.clientKey)), 200);
  await assert.rejects(ping({}), /certificate required/);
  const foreign = await makeCertificates(await createSandbox(t));
  await assert.rejects(
    ping(await identity(foreign.clientCert, foreign.clientKey)),
    // TLS 1.3 rejects the client after its side of the handshake: an alert or a closed socket.
    /unknown ca|socket hang up|ECONNRESET/,
  );
});
