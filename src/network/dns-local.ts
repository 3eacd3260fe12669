/**
 * The answers the per-network DNS server gives from the network's own records (container names,
 * aliases, short IDs), following Docker's embedded DNS: A, AAAA and PTR with a TTL of 600 s,
 * `name` and `name.<network>` both resolve, a known name without an address of the asked family is
 * NOERROR with no answer (never NXDOMAIN), and several holders of one alias all answer, shuffled.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Answer, Question } from 'dns-packet';
import { RCODE, addressFromReverseName, normalizeName } from './dns-message.js';

/** Docker's embedded DNS answers with this TTL. */
export const LOCAL_TTL = 600;

/** What one network knows about names; consulted on every query, nothing is cached. */
export interface DnsRecordSource {
  /**
   * Addresses for a name as seen from this network (container names, aliases, short IDs), or
   * undefined when the name is unknown here. The name arrives lower-cased (ASCII) without a trailing
   * dot, so keys must be stored lower-cased. `client` is the asking address: a container on
   * several networks resolves the names of all of them, whichever server it asks.
   */
  lookup(name: string, client: string): { v4: string[]; v6: string[] } | undefined;
  /**
   * The container name for an address on this network, or undefined. IPv4 arrives dotted-quad,
   * IPv6 in RFC 5952 form (lower-case, shortest `::`), so addresses must be stored that way.
   */
  reverse(address: string, client: string): string | undefined;
}

export interface LocalAnswer {
  rcode: number;
  answers: Answer[];
}

/**
 * The local answer to a question, or undefined when the network does not know the name and the
 * query belongs to the upstream resolvers.
 */
export function answerLocally(
  question: Question,
  records: DnsRecordSource,
  networkName: string | undefined,
  client = '',
): LocalAnswer | undefined {
  if ((question.class ?? 'IN') !== 'IN') return undefined;
  const name = normalizeName(question.name);
  if (name === '' || name === '.') return undefined;
  const domain = networkName === undefined ? undefined : normalizeName(networkName);

  if (question.type === 'PTR') {
    const address = addressFromReverseName(name);
    if (address === undefined) return undefined;
    const host = records.reverse(address, client);
    if (host === undefined) return undefined;
    const target = domain === undefined ? host : `${host}.${domain}`;
    return {
      rcode: RCODE.NOERROR,
      answers: [{ type: 'PTR', name: question.name, ttl: LOCAL_TTL, class: 'IN', data: target }],
    };
  }

  const found = lookupWithDomain(name, records, domain, client);
  if (found === undefined) return undefined;
  if (question.type === 'A') {
    return { rcode: RCODE.NOERROR, answers: addressAnswers(question.name, 'A', found.v4.filter(isIPv4)) };
  }
  if (question.type === 'AAAA') {
    return { rcode: RCODE.NOERROR, answers: addressAnswers(question.name, 'AAAA', found.v6.filter(isIPv6)) };
  }
  // The name exists here and has no records of other types: say so rather than leak a container
  // name to the host's resolvers (Docker does the same for MX).
  return { rcode: RCODE.NOERROR, answers: [] };
}

function lookupWithDomain(
  name: string,
  records: DnsRecordSource,
  domain: string | undefined,
  client: string,
): { v4: string[]; v6: string[] } | undefined {
  const direct = records.lookup(name, client);
  if (direct !== undefined || domain === undefined) return direct;
  const suffix = `.${domain}`;
  if (!name.endsWith(suffix) || name.length === suffix.length) return undefined;
  return records.lookup(name.slice(0, -suffix.length), client);
}

function addressAnswers(owner: string, type: 'A' | 'AAAA', addresses: string[]): Answer[] {
  return shuffle([...new Set(addresses)]).map((data) => ({
    type,
    name: owner,
    ttl: LOCAL_TTL,
    class: 'IN',
    data,
  }));
}

/** Fisher-Yates: spreads clients over the containers that share an alias, like Docker. */
function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
