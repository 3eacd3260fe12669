/**
 * The Dockerfile instructions `docker import --change` and `docker commit --change` accept:
 * CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME and STOPSIGNAL, applied to a
 * container config. A small parser of its own, not the Dockerfile parser: no variable
 * substitution, no line continuations; each change is one instruction (or several on lines).
 */
import { posix } from 'node:path';
import { invalidArgument } from '../../common/errors.js';
import type { ContainerConfig } from '../../oci/image-spec.js';

const fail = (change: string, reason: string): never => {
  throw invalidArgument(`invalid change "${change}": ${reason}`);
};

/** Split words as a shell would for these instructions: quotes group, backslash escapes. */
export function splitWords(text: string, change: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) fail(change, "unterminated ' quote");
      word += text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      // Inside double quotes a backslash escapes only a quote, a backslash, $ and a backquote.
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && '"\\$`'.includes(text[j + 1] ?? 'x')) j++;
        word += text[j];
      }
      if (j >= text.length) fail(change, 'unterminated " quote');
      i = j;
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** A JSON array of strings (exec form), or undefined when `text` is not one. */
function jsonForm(text: string, change: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined; // Docker treats a malformed array as shell form too.
  }
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    fail(change, 'the JSON form must be an array of strings');
  }
  return value as string[];
}

/** `key=value` pairs, or the legacy `key value with spaces` form. */
function pairs(rest: string, change: string): Array<[string, string]> {
  const words = splitWords(rest, change);
  if (words.length === 0) fail(change, 'it needs at least one key and value');
  if (!(words[0] as string).includes('=')) {
    const space = rest.search(/\s/);
    if (space === -1) fail(change, `"${rest}" has no value`);
    const value = splitWords(rest.slice(space + 1).trim(), change).join(' ');
    return [[(splitWords(rest.slice(0, space), change)[0] ?? '') as string, value]];
  }
  return words.map((word) => {
    const equals = word.indexOf('=');
    if (equals <= 0) fail(change, `"${word}" is not key=value`);
    return [word.slice(0, equals), word.slice(equals + 1)];
  });
}

function exposedPorts(rest: string, change: string): string[] {
  const ports: string[] = [];
  for (const word of splitWords(rest, change)) {
    const match = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(word);
    if (!match) fail(change, `"${word}" is not a port, a port range or port/protocol`);
    const first = Number(match?.[1]);
    const last = match?.[2] !== undefined ? Number(match[2]) : first;
    if (first < 1 || last > 65535 || last < first) fail(change, `port range "${word}" is outside 1-65535`);
    const protocol = (match?.[3] ?? 'tcp').toLowerCase();
    for (let port = first; port <= last; port++) ports.push(`${port}/${protocol}`);
  }
  if (ports.length === 0) fail(change, 'it needs at least one port');
  return ports;
}

function applyOne(config: ContainerConfig, change: string): void {
  const match = /^(\S+)\s*([\s\S]*)$/.exec(change.trim());
  if (!match) return;
  const instruction = (match[1] as string).toUpperCase();
  const rest = (match[2] as string).trim();
  if (rest === '') fail(change, `${instruction} needs an argument`);
  switch (instruction) {
    case 'CMD':
    case 'ENTRYPOINT': {
      const command = jsonForm(rest, change) ?? ['/bin/sh', '-c', rest];
      if (instruction === 'CMD') config.Cmd = command;
      else config.Entrypoint = command;
      return;
    }
    case 'ENV': {
      const env = [...(config.Env ?? [])];
      for (const [key, value] of pairs(rest, change)) {
        const at = env.findIndex((entry) => entry.split('=')[0] === key);
        if (at === -1) env.push(`${key}=${value}`);
        else env[at] = `${key}=${value}`;
      }
      config.Env = env;
      return;
    }
    case 'LABEL':
      config.Labels = { ...(config.Labels ?? {}), ...Object.fromEntries(pairs(rest, change)) };
      return;
    case 'EXPOSE': {
      const ports = { ...(config.ExposedPorts ?? {}) };
      for (const port of exposedPorts(rest, change)) ports[port] = {};
      config.ExposedPorts = ports;
      return;
    }
    case 'USER':
      config.User = rest;
      return;
    case 'WORKDIR':
      config.WorkingDir = posix.resolve(config.WorkingDir || '/', rest);
      return;
    case 'VOLUME': {
      const volumes = { ...(config.Volumes ?? {}) };
      for (const path of jsonForm(rest, change) ?? splitWords(rest, change)) {
        if (path.trim() === '') fail(change, 'a volume path is empty');
        volumes[path] = {};
      }
      config.Volumes = volumes;
      return;
    }
    case 'STOPSIGNAL':
      if (!/^(?:SIG)?[A-Z][A-Z0-9+-]*$|^\d+$/i.test(rest)) fail(change, `"${rest}" is not a signal`);
      config.StopSignal = rest;
      return;
    default:
      fail(
        change,
        `${instruction} is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL are)`,
      );
  }
}

/** Apply `changes` in order to a copy of `base`. */
export function applyChanges(base: ContainerConfig, changes: string[]): ContainerConfig {
  const config: ContainerConfig = structuredClone(base);
  for (const change of changes) {
    for (const line of change.split('\n')) if (line.trim() !== '') applyOne(config, line);
  }
  return config;
}
