/**
 * Routes: a method and a path pattern with parameters, matched in registration order (the first
 * match wins, as in Docker's mux). `{id}` matches one path segment; `{name:.*}` matches one or more
 * segments, for image names with slashes (`/images/{name:.*}/json`). Parameters are percent-decoded
 * and typed from the pattern: `router.get('/containers/{id}/json', (ctx) => ctx.params.id)`.
 */
import type { RequestContext } from './context.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

type ParamName<S extends string> = S extends `${infer Name}:${string}` ? Name : S;

/** `{ id: string }` for '/containers/{id}/json'. */
export type PathParams<P extends string> = P extends `${string}{${infer Param}}${infer Rest}`
  ? { [K in ParamName<Param>]: string } & PathParams<Rest>
  : Record<never, never>;

export type Params = Record<string, string>;

/** What a handler returns: a value (200 JSON), a Reply, or undefined (204, unless it took the response over). */
export type HandlerResult = Reply | object | string | number | boolean | null | undefined;

export type Handler<P = Params> = (ctx: RequestContext<P>) => HandlerResult | Promise<HandlerResult>;

/** A response with an explicit status (201 Created, 304 Not Modified, ...) and optional JSON body. */
export class Reply {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;

  constructor(status: number, body?: unknown, headers: Record<string, string> = {}) {
    this.status = status;
    this.body = body;
    this.headers = headers;
  }

  static json(status: number, body: unknown): Reply {
    return new Reply(status, body);
  }

  static empty(status = 204): Reply {
    return new Reply(status);
  }

  /** A plain-text body (e.g. `/_ping`'s "OK"). */
  static text(status: number, text: string, contentType = 'text/plain; charset=utf-8'): Reply {
    return new Reply(status, Buffer.from(text), { 'Content-Type': contentType });
  }
}

export interface Route {
  method: Method;
  pattern: string;
  handler: Handler;
}

interface CompiledRoute extends Route {
  regex: RegExp;
  names: string[];
}

export interface RouteMatch {
  route: Route;
  params: Params;
}

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function compile(pattern: string): { regex: RegExp; names: string[] } {
  if (!pattern.startsWith('/')) throw new Error(`route pattern ${pattern} must start with /`);
  const names: string[] = [];
  let source = '';
  let rest = pattern;
  while (rest !== '') {
    const open = rest.indexOf('{');
    if (open < 0) {
      source += escapeRegex(rest);
      break;
    }
    const close = rest.indexOf('}', open);
    if (close < 0) throw new Error(`route pattern ${pattern} has an unclosed {`);
    source += escapeRegex(rest.slice(0, open));
    const [name = '', kind] = rest.slice(open + 1, close).split(':', 2);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new Error(`route pattern ${pattern}: bad parameter name ${name}`);
    if (names.includes(name)) throw new Error(`route pattern ${pattern} repeats parameter ${name}`);
    if (kind !== undefined && kind !== '.*')
      throw new Error(`route pattern ${pattern}: only {name} and {name:.*} exist`);
    names.push(name);
    source += kind === '.*' ? '(.+)' : '([^/]+)';
    rest = rest.slice(close + 1);
  }
  return { regex: new RegExp(`^${source}$`), names };
}

export class Router {
  private readonly table: CompiledRoute[] = [];

  add<P extends string>(method: Method, pattern: P, handler: Handler<PathParams<P>>): this {
    const { regex, names } = compile(pattern);
    this.table.push({ method, pattern, handler: handler as Handler, regex, names });
    return this;
  }

  get<P extends string>(pattern: P, handler: Handler<PathParams<P>>): this {
    return this.add('GET', pattern, handler);
  }

  head<P extends string>(pattern: P, handler: Handler<PathParams<P>>): this {
    return this.add('HEAD', pattern, handler);
  }

  post<P extends string>(pattern: P, handler: Handler<PathParams<P>>): this {
    return this.add('POST', pattern, handler);
  }

  put<P extends string>(pattern: P, handler: Handler<PathParams<P>>): this {
    return this.add('PUT', pattern, handler);
  }

  delete<P extends string>(pattern: P, handler: Handler<PathParams<P>>): this {
    return this.add('DELETE', pattern, handler);
  }

  routes(): Route[] {
    return this.table.map(({ method, pattern, handler }) => ({ method, pattern, handler }));
  }

  /**
   * The route for a method and a raw (still percent-encoded) path. HEAD falls back to the GET
   * route: node sends its headers without the body. A parameter that is not valid
   * percent-encoding makes the path match nothing.
   */
  match(method: string, rawPath: string): RouteMatch | undefined {
    return this.find(method, rawPath) ?? (method === 'HEAD' ? this.find('GET', rawPath) : undefined);
  }

  private find(method: string, rawPath: string): RouteMatch | undefined {
    for (const route of this.table) {
      if (route.method !== method) continue;
      const match = route.regex.exec(rawPath);
      if (match === null) continue;
      const params: Params = {};
      try {
        route.names.forEach((name, i) => {
          params[name] = decodeURIComponent(match[i + 1] ?? '');
        });
      } catch {
        return undefined;
      }
      return { route, params };
    }
    return undefined;
  }
}
