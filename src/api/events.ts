/**
 * GET /events: Docker's event filters and since/until over the engine's event bus
 * (engine/events.ts). Matching follows dockerd's daemon/events/filter.go.
 */
import { invalidArgument } from '../common/errors.js';
import { encodeEvent, type EventBus, type EventMessage } from '../engine/events.js';
import type { RequestContext } from './context.js';
import type { Filters } from './filters.js';
import { MediaType } from './streams.js';

export const EVENT_FILTERS = [
  'config',
  'container',
  'daemon',
  'event',
  'image',
  'label',
  'network',
  'node',
  'plugin',
  'scope',
  'secret',
  'service',
  'type',
  'volume',
];

/** "name:tag" -> "name", leaving a registry's port ("host:5000/name") alone. */
function stripTag(image: string): string {
  const at = image.indexOf('@');
  const name = at < 0 ? image : image.slice(0, at);
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name;
}

/** Does the event match Docker's filters? */
export function eventMatcher(filters: Filters): (event: EventMessage) => boolean {
  const byName = (event: EventMessage, type: string): boolean =>
    filters.fuzzyMatch(type, event.Actor.ID) || filters.fuzzyMatch(type, event.Actor.Attributes.name ?? '');
  // An action with a detail after a colon ("exec_start: sh") matches its bare name too.
  const fuzzyActions = ['health_status', 'exec_create', 'exec_start'].some((name) =>
    filters.get('event').includes(name),
  );
  return (event) => {
    const action = fuzzyActions
      ? filters.fuzzyMatch('event', event.Action)
      : filters.exactMatch('event', event.Action);
    if (!action || !filters.exactMatch('type', event.Type) || !filters.exactMatch('scope', event.scope))
      return false;
    for (const type of [
      'daemon',
      'container',
      'plugin',
      'volume',
      'network',
      'node',
      'service',
      'secret',
      'config',
    ]) {
      if (!byName(event, type)) return false;
    }
    const imageName = event.Actor.Attributes[event.Type === 'image' ? 'name' : 'image'] ?? '';
    const image =
      filters.exactMatch('image', event.Actor.ID) ||
      filters.exactMatch('image', imageName) ||
      filters.exactMatch('image', stripTag(event.Actor.ID)) ||
      filters.exactMatch('image', stripTag(imageName));
    return image && filters.matchKVList('label', event.Actor.Attributes);
  };
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** A `since`/`until` value: seconds since the epoch with an optional fraction, as the docker CLI sends. */
export function parseEventTime(name: string, value: string | undefined): bigint | undefined {
  if (value === undefined || value === '') return undefined;
  const match = /^(\d+)(?:\.(\d+))?$/.exec(value);
  if (match === null) {
    throw invalidArgument(
      `invalid value for ${name}: ${JSON.stringify(value)} is not a timestamp (seconds since the epoch)`,
    );
  }
  const fraction = (match[2] ?? '').slice(0, 9).padEnd(9, '0');
  return BigInt(match[1] ?? '0') * 1_000_000_000n + BigInt(fraction);
}

/**
 * Streams the matching kept events and then live ones. With `until` in the past it ends after
 * the kept events; with `until` ahead it ends when that time comes.
 */
export async function streamEvents(ctx: RequestContext, bus: EventBus): Promise<void> {
  const since = parseEventTime('since', ctx.query.string('since'));
  const until = parseEventTime('until', ctx.query.string('until'));
  if (since !== undefined && until !== undefined && until < since) {
    throw invalidArgument(
      `\`since\` time (${ctx.query.string('since')}) cannot be after \`until\` time (${ctx.query.string('until')})`,
    );
  }
  const filter = eventMatcher(ctx.query.filters(EVENT_FILTERS));
  const subscription = bus.subscribe({ since, until, filter });
  const stream = ctx.stream(MediaType.Json);
  const stop = (): void => subscription.close();
  ctx.signal.addEventListener('abort', stop);
  let timer: NodeJS.Timeout | undefined;
  try {
    for (const event of subscription.buffered) if (!(await stream.write(encodeEvent(event)))) return;
    if (until !== undefined) {
      if (until <= bus.now()) return;
      // setTimeout holds at most ~24.8 days: a later `until` is reached in steps.
      const arm = (): void => {
        const remaining = until - bus.now();
        if (remaining <= 0n) return stop();
        timer = setTimeout(arm, Math.min(Number(remaining / 1_000_000n) + 1, MAX_TIMER_MS));
      };
      arm();
    }
    for await (const event of subscription) if (!(await stream.write(encodeEvent(event)))) return;
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', stop);
    subscription.close();
    stream.end();
  }
}
