import { test } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import type { Answer } from 'dns-packet';
import {
  RCODE,
  addressFromReverseName,
  encodeResponse,
  formatIPv6,
  normalizeName,
  parseQuery,
  type Query,
} from '../../../src/network/dns-message.js';
import { answerLocally, type DnsRecordSource } from '../../../src/network/dns-local.js';
import { FrameReader, frame } from '../../../src/network/dns-tcp.js';
import { parseUpstream, upstreamsFromResolvConf } from '../../../src/network/dns-upstream.js';
import { BerthError } from '../../../src/common/errors.js';

const query = (name: string, type: 'A' | 'AAAA' | 'PTR' | 'TXT' = 'A', id = 7): Buffer =>
  dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });

function parsed(raw: Buffer): Query {
  const result = parseQuery(raw);
  assert.ok(result, 'query should parse');
  return result;
}

test('parseQuery reads id, question and EDNS size', () => {
  const raw = dnsPacket.encode({
    type: 'query',
    id: 0xbeef,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'AAAA', name: 'Web.Example' }],
    additionals: [
      {
        type: 'OPT',
        name: '.',
        udpPayloadSize: 1400,
        extendedRcode: 0,
        ednsVersion: 0,
        flags: 0,
        flag_do: false,
        options: [],
      },
    ],
  });
  const q = parsed(raw);
  assert.equal(q.id, 0xbeef);
  assert.equal(q.opcode, 0);
  assert.equal(q.recursionDesired, true);
  assert.equal(q.plainQuestion?.name, 'Web.Example');
  assert.equal(q.plainQuestion?.type, 'AAAA');
  assert.equal(q.ednsUdpSize, 1400);
});

test('parseQuery drops garbage, responses and question-less messages', () => {
  assert.equal(parseQuery(Buffer.alloc(0)), undefined);
  assert.equal(parseQuery(Buffer.from([1, 2, 3, 4, 5])), undefined);
  // Header claims one question that is not there.
  assert.equal(parseQuery(Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])), undefined);
  // A label running past the end of the packet.
  assert.equal(parseQuery(Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 60, 0x61, 0x62])), undefined);
  // A compression pointer to itself.
  assert.equal(
    parseQuery(Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1])),
    undefined,
  );
  const response = dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'web' }] });
  assert.equal(parseQuery(response), undefined);
  assert.equal(parseQuery(dnsPacket.encode({ type: 'query', id: 1, questions: [] })), undefined);
});

test('a label hiding a dot is not a plain question (never answered locally)', () => {
  // One label "web.net" (7 bytes) instead of two labels.
  const raw = Buffer.concat([
    Buffer.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7]),
    Buffer.from('web.net'),
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
  const q = parsed(raw);
  assert.equal(q.plainQuestion, undefined);
  assert.equal(q.questions.length, 1);
});

test('encodeResponse echoes id, question and RD, sets RA and the rcode', () => {
  const q = parsed(query('Web', 'A', 0x1234));
  const decoded = dnsPacket.decode(encodeResponse(q, RCODE.SERVFAIL, [], 'udp'));
  assert.equal(decoded.id, 0x1234);
  assert.equal(decoded.flag_qr, true);
  assert.equal(decoded.flag_rd, true);
  assert.equal(decoded.flag_ra, true);
  assert.equal((decoded as unknown as { rcode: string }).rcode, 'SERVFAIL');
  assert.deepEqual(
    decoded.questions?.map((x) => x.name),
    ['Web'],
  );
});

test('encodeResponse truncates over UDP to 512 bytes (or the EDNS size) and not over TCP', () => {
  const q = parsed(query('many'));
  const answers: Answer[] = [];
  for (let i = 0; i < 300; i++) {
    answers.push({ type: 'A', name: 'many', ttl: 600, data: `10.0.${i >> 8}.${i & 255}` });
  }
  const udp = encodeResponse(q, RCODE.NOERROR, answers, 'udp');
  assert.ok(udp.length <= 512);
  const udpDecoded = dnsPacket.decode(udp);
  assert.equal(udpDecoded.flag_tc, true);
  assert.ok((udpDecoded.answers?.length ?? 0) > 0);
  assert.ok((udpDecoded.answers?.length ?? 0) < 300);

  const tcpDecoded = dnsPacket.decode(encodeResponse(q, RCODE.NOERROR, answers, 'tcp'));
  assert.equal(tcpDecoded.flag_tc, false);
  assert.equal(tcpDecoded.answers?.length, 300);

  const edns = parsed(
    dnsPacket.encode({
      type: 'query',
      id: 3,
      questions: [{ type: 'A', name: 'many' }],
      additionals: [
        {
          type: 'OPT',
          name: '.',
          udpPayloadSize: 2048,
          extendedRcode: 0,
          ednsVersion: 0,
          flags: 0,
          flag_do: false,
          options: [],
        },
      ],
    }),
  );
  const ednsResponse = encodeResponse(edns, RCODE.NOERROR, answers, 'udp');
  assert.ok(ednsResponse.length > 512 && ednsResponse.length <= 2048);
  const ednsDecoded = dnsPacket.decode(ednsResponse);
  assert.equal(ednsDecoded.flag_tc, true);
  assert.equal(ednsDecoded.additionals?.[0]?.type, 'OPT');
});

test('normalizeName lower-cases ASCII only and drops the trailing dot', () => {
  assert.equal(normalizeName('WeB.MyNet.'), 'web.mynet');
  assert.equal(normalizeName('web'), 'web');
  // The Kelvin sign lower-cases to an ASCII k in Unicode, but not in DNS.
  assert.equal(normalizeName('\u212Aey'), '\u212Aey');
});

test('addressFromReverseName parses full in-addr.arpa and ip6.arpa names only', () => {
  assert.equal(addressFromReverseName('4.3.2.172.in-addr.arpa'), '172.2.3.4');
  assert.equal(addressFromReverseName('0.0.0.0.in-addr.arpa'), '0.0.0.0');
  assert.equal(addressFromReverseName('3.2.172.in-addr.arpa'), undefined);
  assert.equal(addressFromReverseName('256.3.2.172.in-addr.arpa'), undefined);
  assert.equal(addressFromReverseName('04.3.2.172.in-addr.arpa'), undefined);
  assert.equal(addressFromReverseName('x.3.2.172.in-addr.arpa'), undefined);
  const v6 = '2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa';
  assert.equal(addressFromReverseName(v6), 'fd00::2');
  assert.equal(addressFromReverseName(v6.slice(2)), undefined);
  assert.equal(addressFromReverseName('example.com'), undefined);
});

test('formatIPv6 writes RFC 5952 text', () => {
  assert.equal(formatIPv6([0, 0, 0, 0, 0, 0, 0, 1]), '::1');
  assert.equal(formatIPv6([0, 0, 0, 0, 0, 0, 0, 0]), '::');
  assert.equal(formatIPv6([0xfd00, 0, 0, 0, 0, 0, 0, 0]), 'fd00::');
  assert.equal(formatIPv6([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1]), '2001:db8:0:1::1');
  // A single zero group is not shortened; of two equal runs the first wins.
  assert.equal(formatIPv6([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]), '2001:db8:0:1:1:1:1:1');
  assert.equal(formatIPv6([1, 0, 0, 2, 0, 0, 3, 4]), '1::2:0:0:3:4');
});

const records: DnsRecordSource = {
  lookup: (name) =>
    name === 'web'
      ? { v4: ['10.1.0.2', '10.1.0.2', 'bogus'], v6: [] }
      : name === 'db'
        ? { v4: ['10.1.0.3'], v6: ['fd00::3'] }
        : undefined,
  reverse: (address) => (address === '10.1.0.2' ? 'web' : undefined),
};

test('answerLocally: A, AAAA, name.<network>, PTR, other types and unknown names', () => {
  const a = answerLocally({ type: 'A', name: 'WEB.' }, records, 'MyNet');
  assert.deepEqual(a, {
    rcode: RCODE.NOERROR,
    answers: [{ type: 'A', name: 'WEB.', ttl: 600, class: 'IN', data: '10.1.0.2' }],
  });
  assert.equal(answerLocally({ type: 'A', name: 'web.mynet' }, records, 'MyNet')?.answers.length, 1);
  assert.equal(answerLocally({ type: 'A', name: 'web.othernet' }, records, 'MyNet'), undefined);
  assert.equal(answerLocally({ type: 'A', name: '.mynet' }, records, 'MyNet'), undefined);
  assert.deepEqual(answerLocally({ type: 'AAAA', name: 'web' }, records, undefined), {
    rcode: 0,
    answers: [],
  });
  assert.deepEqual(answerLocally({ type: 'AAAA', name: 'db' }, records, undefined)?.answers[0]?.type, 'AAAA');
  assert.deepEqual(answerLocally({ type: 'MX', name: 'db' }, records, undefined), { rcode: 0, answers: [] });
  assert.equal(answerLocally({ type: 'A', name: 'db', class: 'CH' }, records, undefined), undefined);
  assert.equal(answerLocally({ type: 'A', name: 'nope' }, records, 'mynet'), undefined);
  assert.deepEqual(answerLocally({ type: 'PTR', name: '2.0.1.10.in-addr.arpa' }, records, 'mynet')?.answers, [
    { type: 'PTR', name: '2.0.1.10.in-addr.arpa', ttl: 600, class: 'IN', data: 'web.mynet' },
  ]);
  assert.equal(answerLocally({ type: 'PTR', name: '9.0.1.10.in-addr.arpa' }, records, 'mynet'), undefined);
});

test('parseUpstream accepts ip, ip:port and [ipv6]:port and names bad input', () => {
  assert.deepEqual(parseUpstream('127.0.0.53'), { host: '127.0.0.53', port: 53, family: 4 });
  assert.deepEqual(parseUpstream('10.0.0.1:5353'), { host: '10.0.0.1', port: 5353, family: 4 });
  assert.deepEqual(parseUpstream('fd00::1'), { host: 'fd00::1', port: 53, family: 6 });
  assert.deepEqual(parseUpstream('[fd00::1]:5353'), { host: 'fd00::1', port: 5353, family: 6 });
  assert.deepEqual(parseUpstream('[::1]'), { host: '::1', port: 53, family: 6 });
  for (const bad of [
    '',
    'dns.example',
    '1.2.3.4:0',
    '1.2.3.4:70000',
    '[1.2.3.4]:53',
    '1.2.3:53',
    '[fd00::1]:x',
  ]) {
    assert.throws(
      () => parseUpstream(bad),
      (err: unknown) =>
        err instanceof BerthError && err.kind === 'invalid-argument' && err.message.includes(`"${bad}"`),
      bad,
    );
  }
});

test('upstreamsFromResolvConf keeps nameservers in order, loopback included, without duplicates', () => {
  const conf = [
    '# Generated by something',
    'nameserver 127.0.0.53',
    '; comment',
    'search example.com',
    '  nameserver   fd00::53   # trailing comment',
    'nameserver not-an-address',
    'nameserver 127.0.0.53',
    'nameserver',
    'options edns0 trust-ad',
    'nameserver 10.0.0.2',
  ].join('\n');
  assert.deepEqual(upstreamsFromResolvConf(conf), ['127.0.0.53', 'fd00::53', '10.0.0.2']);
  assert.deepEqual(upstreamsFromResolvConf(''), []);
});

test('FrameReader splits length-prefixed messages across and within chunks', () => {
  const one = Buffer.from('first message');
  const two = Buffer.from('2nd');
  const stream = Buffer.concat([frame(one), frame(two), frame(Buffer.alloc(0))]);
  const reader = new FrameReader();
  const out: string[] = [];
  for (const byte of stream) {
    reader.push(Buffer.from([byte]));
    for (let m = reader.next(); m !== undefined; m = reader.next()) out.push(m.toString());
  }
  assert.deepEqual(out, ['first message', '2nd', '']);
  assert.equal(reader.buffered, 0);

  const whole = new FrameReader();
  whole.push(Buffer.concat([stream, Buffer.from([0, 5, 1])]));
  assert.equal(whole.next()?.toString(), 'first message');
  assert.equal(whole.next()?.toString(), '2nd');
  assert.equal(whole.next()?.length, 0);
  assert.equal(whole.next(), undefined);
  assert.equal(whole.buffered, 3);
});
