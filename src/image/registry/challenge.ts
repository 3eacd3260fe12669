/**
 * WWW-Authenticate challenges (RFC 7235): `Bearer realm="https://auth.example/token",
 * service="registry.example",scope="repository:a/b:pull"`, possibly several in one header.
 */

export interface Challenge {
  /** Lowercase scheme: `bearer`, `basic`. */
  scheme: string;
  /** Parameter names in lowercase. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/** Parse every challenge in a WWW-Authenticate header value; malformed tails are dropped. */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let rest = header;
  let current: Challenge | undefined;
  const skip = (pattern: RegExp): void => {
    rest = rest.replace(pattern, '');
  };
  // Each pass consumes at least one character or stops, so this ends.
  while (rest.length > 0) {
    skip(/^[\s,]+/);
    const token = TOKEN.exec(rest)?.[0];
    if (token === undefined) break;
    const after = rest.slice(token.length);
    const param = /^\s*=\s*/.exec(after);
    if (current === undefined || !param) {
      // A token not followed by "=" starts a new challenge (token68 credentials are not used here).
      if (param) break;
      current = { scheme: token.toLowerCase(), params: {} };
      challenges.push(current);
      rest = after;
      continue;
    }
    rest = after.slice(param[0].length);
    let value: string;
    if (rest.startsWith('"')) {
      const quoted = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
      if (!quoted) break;
      value = (quoted[1] ?? '').replace(/\\(.)/g, '$1');
      rest = rest.slice(quoted[0].length);
    } else {
      // Lenient: registries send unquoted URLs, which are not RFC tokens.
      value = /^[^,\s]*/.exec(rest)?.[0] ?? '';
      rest = rest.slice(value.length);
    }
    current.params[token.toLowerCase()] = value;
  }
  return challenges;
}

/** The challenges of a 401 response, bearer first (it carries the scope the registry wants). */
export function challengesFrom(headers: Headers): Challenge[] {
  const header = headers.get('www-authenticate');
  if (header === null) return [];
  const parsed = parseChallenges(header);
  return [...parsed.filter((c) => c.scheme === 'bearer'), ...parsed.filter((c) => c.scheme !== 'bearer')];
}
