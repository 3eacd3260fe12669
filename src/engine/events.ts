/**
 * The daemon's event bus: engine parts publish what happened (a container started, an image was
 * pulled, the daemon reloaded its configuration) and `GET /events` subscribers receive it. It keeps
 * the last events so a subscriber can ask for the recent past (`since`), and knows nothing of HTTP
 * or of Docker's filter syntax: a subscriber passes a predicate.
 */

export interface EventActor {
  ID: string;
  Attributes: Record<string, string>;
}

/** Docker's events.Message, in its JSON field order. */
export interface EventMessage {
  /** Deprecated copies Docker still sends for container and image events. */
  status?: string;
  id?: string;
  from?: string;
  Type: string;
  Action: string;
  Actor: EventActor;
  scope: 'local' | 'swarm';
  /** Seconds since the epoch. */
  time: number;
  /** Nanoseconds since the epoch; beyond a double's exact range, hence a bigint. */
  timeNano: bigint;
}

export interface PublishInput {
  /** container, image, volume, network, daemon, plugin, ... */
  Type: string;
  /** create, start, die, pull, reload, ... */
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  /** When it happened; now if absent. */
  timeNano?: bigint;
}

export interface SubscribeOptions {
  /** Replay buffered events from this time on (and receive live ones only from then). */
  since?: bigint;
  /** Receive nothing after this time. */
  until?: bigint;
  filter?: (event: EventMessage) => boolean;
}

/** Wall-clock nanoseconds that never go backwards within the process. */
function monotonicClock(): () => bigint {
  const originWall = BigInt(Date.now()) * 1_000_000n;
  const originMono = process.hrtime.bigint();
  return () => originWall + (process.hrtime.bigint() - originMono);
}

/** One JSON line as Docker writes it (timeNano as an exact integer). */
export function encodeEvent(event: EventMessage): string {
  const { timeNano, time, ...rest } = event;
  return `${JSON.stringify(rest).slice(0, -1)},"time":${time},"timeNano":${timeNano}}\n`;
}

export class Subscription implements AsyncIterable<EventMessage> {
  /** Past events in the requested window, oldest first. */
  readonly buffered: EventMessage[];
  private readonly queue: EventMessage[] = [];
  private waiting: ((event: EventMessage | undefined) => void) | undefined;
  private done = false;
  private overflow = false;
  private readonly options: SubscribeOptions;
  private readonly limit: number;
  private readonly onClose: (subscription: Subscription) => void;

  constructor(
    buffered: EventMessage[],
    options: SubscribeOptions,
    limit: number,
    onClose: (subscription: Subscription) => void,
  ) {
    this.buffered = buffered;
    this.options = options;
    this.limit = limit;
    this.onClose = onClose;
  }

  /** True when the subscriber fell too far behind and was cut off. */
  get overflowed(): boolean {
    return this.overflow;
  }

  get closed(): boolean {
    return this.done;
  }

  /** Called by the bus for each published event. */
  offer(event: EventMessage): void {
    if (this.done) return;
    const { since, until, filter } = this.options;
    if (since !== undefined && event.timeNano < since) return;
    if (until !== undefined && event.timeNano > until) return;
    if (filter !== undefined && !filter(event)) return;
    if (this.waiting !== undefined) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve(event);
      return;
    }
    if (this.queue.length >= this.limit) {
      this.overflow = true;
      this.close();
      return;
    }
    this.queue.push(event);
  }

  /** The next live event, or undefined once closed. */
  next(): Promise<EventMessage | undefined> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.done) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve?.(undefined);
    this.onClose(this);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<EventMessage> {
    while (true) {
      const event = await this.next();
      if (event === undefined) return;
      yield event;
    }
  }
}

export interface EventBusOptions {
  /** How many past events are kept for `since` (Docker keeps 256). */
  history?: number;
  /** How many undelivered events a subscriber may have before it is cut off. */
  queueLimit?: number;
  clock?: () => bigint;
}

export class EventBus {
  private readonly history: EventMessage[] = [];
  private readonly historySize: number;
  private readonly queueLimit: number;
  private readonly clock: () => bigint;
  private readonly subscriptions = new Set<Subscription>();

  constructor(options: EventBusOptions = {}) {
    this.historySize = options.history ?? 256;
    this.queueLimit = options.queueLimit ?? 1024;
    this.clock = options.clock ?? monotonicClock();
  }

  /** Current time on the bus's clock, in nanoseconds since the epoch. */
  now(): bigint {
    return this.clock();
  }

  get subscriberCount(): number {
    return this.subscriptions.size;
  }

  publish(input: PublishInput): EventMessage {
    const timeNano = input.timeNano ?? this.clock();
    const actor: EventActor = { ID: input.Actor.ID, Attributes: { ...input.Actor.Attributes } };
    // Docker fills the deprecated fields for container and image events only.
    const legacy: Pick<EventMessage, 'status' | 'id' | 'from'> = {};
    if (input.Type === 'container' || input.Type === 'image') {
      legacy.status = input.Action;
      legacy.id = actor.ID;
      if (input.Type === 'container' && actor.Attributes.image !== undefined)
        legacy.from = actor.Attributes.image;
    }
    const event: EventMessage = {
      ...legacy,
      Type: input.Type,
      Action: input.Action,
      Actor: actor,
      scope: 'local',
      time: Number(timeNano / 1_000_000_000n),
      timeNano,
    };
    this.history.push(event);
    if (this.history.length > this.historySize) this.history.shift();
    for (const subscription of this.subscriptions) subscription.offer(event);
    return event;
  }

  /**
   * Live events from now on; with `since` or `until`, also the kept past events inside that
   * window (Docker replays nothing when neither is given).
   */
  subscribe(options: SubscribeOptions = {}): Subscription {
    const { since, until, filter } = options;
    const buffered =
      since === undefined && until === undefined
        ? []
        : this.history.filter(
            (event) =>
              (since === undefined || event.timeNano >= since) &&
              (until === undefined || event.timeNano <= until) &&
              (filter === undefined || filter(event)),
          );
    const subscription = new Subscription(buffered, options, this.queueLimit, (s) =>
      this.subscriptions.delete(s),
    );
    this.subscriptions.add(subscription);
    return subscription;
  }

  /** Ends every subscription (daemon shutdown). */
  close(): void {
    for (const subscription of [...this.subscriptions]) subscription.close();
  }
}
