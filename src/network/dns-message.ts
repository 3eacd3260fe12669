/**
 * DNS messages as the per-network server sees them: queries read with dns-packet and checked
 * strictly enough to answer safely, and the responses the server writes itself (local answers,
 * SERVFAIL, NOTIMP), truncated to what the client can receive.
 */
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';

export type Transport = 'udp' | 'tcp';

export const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export const HEADER_SIZE = 12;
/** A DNS message over TCP carries a 2-byte length, so none is larger than this. */
export const MAX_MESSAGE_SIZE = 65535;
/** Without EDNS a UDP response must fit in 512 bytes (RFC 1035). */
const MIN_UDP_SIZE = 512;
/** Larger EDNS buffer sizes are honoured only up to this, the usual cap of stub resolvers. */
const MAX_UDP_SIZE = 4096;
/** The buffer size we advertise in our own OPT record (DNS flag day 2020). */
const OWN_EDNS_UDP_SIZE = 1232;

export interface Query {
  raw: Buffer;
  id: number;
  opcode: number;
  recursionDesired: boolean;
  questions: Question[];
  /**
   * The query's only question, when re-encoding it reproduces the client's bytes exactly: only
   * then may the server answer it itself (no escaped dots or odd bytes hiding in a label).
   */
  plainQuestion: Question | undefined;
  /** The client's EDNS UDP buffer size, when the query carries an OPT record. */
  ednsUdpSize: number | undefined;
}

/** Reads a query; undefined for anything that must be dropped (garbage, responses, no question). */
export function parseQuery(raw: Buffer): Query | undefined {
  if (raw.length < HEADER_SIZE || raw.length > MAX_MESSAGE_SIZE) return undefined;
  const flags = raw.readUInt16BE(2);
  // Never answer a response: two servers could otherwise bounce packets forever.
  if ((flags & 0x8000) !== 0) return undefined;
  let packet: DecodedPacket;
  try {
    packet = dnsPacket.decode(raw);
  } catch {
    return undefined;
  }
  const questions = packet.questions ?? [];
  if (questions.length === 0) return undefined;
  const opt = (packet.additionals ?? []).find((record) => record.type === 'OPT');
  const only = questions.length === 1 ? questions[0] : undefined;
  return {
    raw,
    id: raw.readUInt16BE(0),
    opcode: (flags >> 11) & 0xf,
    recursionDesired: (flags & dnsPacket.RECURSION_DESIRED) !== 0,
    questions,
    plainQuestion: only !== undefined && reencodesExactly(raw, only) ? only : undefined,
    ednsUdpSize: opt?.type === 'OPT' ? opt.udpPayloadSize : undefined,
  };
}

function reencodesExactly(raw: Buffer, question: Question): boolean {
  let encoded: Buffer;
  try {
    encoded = dnsPacket.encode({ questions: [question] });
  } catch {
    return false;
  }
  const end = encoded.length;
  return raw.length >= end && encoded.subarray(HEADER_SIZE).equals(raw.subarray(HEADER_SIZE, end));
}

/** The largest response this client can take over this transport. */
export function maxResponseSize(query: Query, transport: Transport): number {
  if (transport === 'tcp') return MAX_MESSAGE_SIZE;
  const requested = query.ednsUdpSize ?? MIN_UDP_SIZE;
  return Math.min(Math.max(requested, MIN_UDP_SIZE), MAX_UDP_SIZE);
}

/**
 * A response to the query written by the server itself. Answers that do not fit are dropped from
 * the end; over UDP the TC bit then tells the client to ask again over TCP.
 */
export function encodeResponse(query: Query, rcode: number, answers: Answer[], transport: Transport): Buffer {
  const flags =
    (query.opcode << 11) |
    (query.recursionDesired ? dnsPacket.RECURSION_DESIRED : 0) |
    dnsPacket.RECURSION_AVAILABLE |
    rcode;
  const packet: Packet = {
    type: 'response',
    id: query.id,
    flags,
    questions: query.questions,
    answers,
    additionals:
      query.ednsUdpSize === undefined
        ? []
        : [
            {
              type: 'OPT',
              name: '.',
              udpPayloadSize: OWN_EDNS_UDP_SIZE,
              extendedRcode: 0,
              ednsVersion: 0,
              flags: 0,
              flag_do: false,
              options: [],
            },
          ],
  };
  const limit = maxResponseSize(query, transport);
  const full = dnsPacket.encode(packet);
  if (full.length <= limit || answers.length === 0) return full;
  // Every answer the server writes for one question has the same owner name and type, hence the
  // same size, so the number that fits is a division, not a search.
  const empty = dnsPacket.encodingLength({ ...packet, answers: [] });
  const perAnswer = (full.length - empty) / answers.length;
  const fitting = Math.max(0, Math.floor((limit - empty) / perAnswer));
  const truncatedFlag = transport === 'udp' ? dnsPacket.TRUNCATED_RESPONSE : 0;
  return dnsPacket.encode({ ...packet, flags: flags | truncatedFlag, answers: answers.slice(0, fitting) });
}

/** Lower-cases ASCII only (DNS names compare case-insensitively in ASCII, RFC 4343) and drops the root dot. */
export function normalizeName(name: string): string {
  const lowered = name.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
  return lowered.endsWith('.') ? lowered.slice(0, -1) : lowered;
}

const IPV4_REVERSE_SUFFIX = '.in-addr.arpa';
const IPV6_REVERSE_SUFFIX = '.ip6.arpa';

/**
 * The address a full reverse name stands for (`4.3.2.1.in-addr.arpa` -> `1.2.3.4`; 32 nibbles
 * under ip6.arpa -> RFC 5952 text), or undefined for partial or malformed names.
 */
export function addressFromReverseName(normalizedName: string): string | undefined {
  if (normalizedName.endsWith(IPV4_REVERSE_SUFFIX)) {
    const octets = normalizedName.slice(0, -IPV4_REVERSE_SUFFIX.length).split('.');
    if (octets.length !== 4) return undefined;
    if (!octets.every((octet) => /^(0|[1-9][0-9]{0,2})$/.test(octet) && Number(octet) <= 255))
      return undefined;
    return octets.reverse().join('.');
  }
  if (normalizedName.endsWith(IPV6_REVERSE_SUFFIX)) {
    const nibbles = normalizedName.slice(0, -IPV6_REVERSE_SUFFIX.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((nibble) => /^[0-9a-f]$/.test(nibble))) return undefined;
    const hex = nibbles.reverse().join('');
    const groups: number[] = [];
    for (let i = 0; i < 32; i += 4) groups.push(parseInt(hex.slice(i, i + 4), 16));
    return formatIPv6(groups);
  }
  return undefined;
}

/** RFC 5952 text for eight 16-bit groups: lower-case hex, the longest run of two or more zero groups as `::`. */
export function formatIPv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < groups.length;) {
    if (groups[start] !== 0) {
      start++;
      continue;
    }
    let end = start;
    while (end < groups.length && groups[end] === 0) end++;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  const text = groups.map((group) => group.toString(16));
  if (bestStart < 0) return text.join(':');
  const head = text.slice(0, bestStart).join(':');
  const tail = text.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}
