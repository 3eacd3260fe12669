/**
 * The soak's mixed workload, shared by bench/soak.ts and test/integration/soak.test.ts. One
 * iteration runs its lanes at the same time, then a burst of short containers:
 * run --rm (none and bridge); run -d + logs + exec + pause/unpause + stats + stop + rm; two
 * containers on a user-defined network resolving each other by name; a published port fetched
 * through 127.0.0.1; a volume made, written, read and removed; a network made and removed; a tag
 * and its rmi; a cached build and a run of its image; restart-policy containers that crash; event
 * stream consumers opened and closed. Every name carries the iteration number; every container
 * runs below the target's cgroup parent. A failure is recorded (not thrown) and its lane still
 * removes what it made, so one error does not end the soak and the leak check stays fair.
 */
import http from 'node:http';
import { join } from 'node:path';
import type { SoakTarget } from './soak-target.js';
import type { Owned } from './soak-measure.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** `promise`, or an error after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)),
  );
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A GET /events stream: the events received so far, and a way to hang up. */
interface EventStream {
  events: Array<{ Actor?: { ID?: string } }>;
  /** Resolves once the response head arrived (berthd has subscribed). */
  ready: Promise<void>;
  /** Resolves when the stream ends, either side. */
  ended: Promise<void>;
  onEvent?: () => void;
  close(): void;
}

function openEvents(socket: string, filters: Record<string, string[]>): EventStream {
  let markReady: () => void = () => undefined;
  let failReady: (err: Error) => void = () => undefined;
  let markEnded: () => void = () => undefined;
  const stream: EventStream = {
    events: [],
    ready: new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    }),
    ended: new Promise<void>((resolve) => (markEnded = resolve)),
    close: () => req.destroy(),
  };
  const path = `/events?filters=${encodeURIComponent(JSON.stringify(filters))}`;
  const req = http.get({ socketPath: socket, path, agent: false }, (res) => {
    if (res.statusCode !== 200) {
      failReady(new Error(`GET /events answered ${res.statusCode}`));
      res.resume();
      return;
    }
    markReady();
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (line === '') continue;
        try {
          stream.events.push(JSON.parse(line) as EventStream['events'][number]);
        } catch {
          req.destroy(new Error(`GET /events sent a line that is not JSON: ${line.slice(0, 200)}`));
          return;
        }
        stream.onEvent?.();
      }
    });
    res.on('close', markEnded);
  });
  req.on('error', (err) => {
    failReady(err);
    markEnded();
  });
  req.on('close', markEnded);
  return stream;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET 127.0.0.1:${port}${path} timed out`)));
    req.on('error', reject);
  });
}

/** Poll `probe` until it returns true: at most `tries` times, `everyMs` apart. */
async function until(
  what: string,
  tries: number,
  everyMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await probe()) return;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not reached after ${tries} tries ${everyMs} ms apart`);
}

export class SoakWorkload {
  /** One line per failed step: iteration, lane and what went wrong. */
  readonly errors: string[] = [];
  readonly owned: Owned = { containerIds: new Set(), bridges: new Set() };
  /** Docker commands run and events consumed, for the report. */
  readonly counts = { commands: 0, containers: 0, eventStreams: 0 };
  private recorder: EventStream | undefined;

  constructor(private readonly target: SoakTarget) {}

  /**
   * Follow container creates for the whole soak (veths are named after container ids); the
   * recorder is one event listener, present at both measurements.
   */
  async start(): Promise<void> {
    this.recorder = openEvents(this.target.socket, { type: ['container'], event: ['create'] });
    this.recorder.onEvent = () => {
      for (const event of this.recorder?.events.splice(0) ?? []) {
        if (event.Actor?.ID) this.owned.containerIds.add(event.Actor.ID);
      }
    };
    await this.recorder.ready;
  }

  stop(): void {
    this.recorder?.close();
  }

  /** A docker command that must succeed; its standard output. */
  private async ok(args: string[], timeoutMs = 60_000, env?: NodeJS.ProcessEnv): Promise<string> {
    this.counts.commands++;
    const result = await this.target.docker(args, { timeoutMs, ...(env ? { env } : {}) });
    if (result.code !== 0) {
      throw new Error(`docker ${args.join(' ')} exited ${result.code}: ${result.stderr.trim().slice(-500)}`);
    }
    return result.stdout;
  }

  /** `run` arguments every container gets. */
  private get cg(): string[] {
    return ['--cgroup-parent', this.target.cgroupParent];
  }

  /** Run `lane`, recording its failure; `cleanup` runs either way (its own failures are recorded too). */
  private async lane(
    iteration: number,
    name: string,
    lane: () => Promise<void>,
    cleanup?: () => Promise<void>,
  ): Promise<void> {
    try {
      await lane();
    } catch (err) {
      this.errors.push(`iteration ${iteration}, ${name}: ${describe(err)}`);
    } finally {
      if (cleanup) {
        try {
          await cleanup();
        } catch (err) {
          this.errors.push(`iteration ${iteration}, ${name} cleanup: ${describe(err)}`);
        }
      }
    }
  }

  /** Remove containers if they still exist (after a failed lane); a missing one is fine. */
  private async removeIfPresent(...names: string[]): Promise<void> {
    const result = await this.target.docker(['rm', '-f', ...names]);
    const real = result.stderr
      .split('\n')
      .filter((line) => line.trim() !== '' && !/no such container/i.test(line));
    if (result.code !== 0 && real.length > 0)
      throw new Error(`docker rm -f ${names.join(' ')}: ${real.join('; ')}`);
  }

  private async runRm(i: number): Promise<void> {
    const none = await this.ok([
      'run',
      '--rm',
      ...this.cg,
      '--network',
      'none',
      'busybox',
      'echo',
      `none-${i}`,
    ]);
    if (none !== `none-${i}\n`) throw new Error(`run --rm --network none printed ${JSON.stringify(none)}`);
    const bridge = await this.ok(['run', '--rm', ...this.cg, 'busybox', 'ip', '-4', 'addr', 'show', 'eth0']);
    if (!/inet \d+\.\d+\.\d+\.\d+\//.test(bridge)) throw new Error(`no address on eth0: ${bridge}`);
    this.counts.containers += 2;
  }

  private async lifecycle(name: string): Promise<void> {
    // The shell exits on SIGTERM, so stop needs no kill after its grace period.
    await this.ok([
      'run',
      '-d',
      ...this.cg,
      '--name',
      name,
      'busybox',
      'sh',
      '-c',
      'trap "exit 0" TERM; echo ready; while :; do sleep 1 & wait $!; done',
    ]);
    this.counts.containers++;
    const hostname = await this.ok(['exec', name, 'hostname']);
    if (hostname.trim() === '') throw new Error('exec hostname printed nothing');
    await until(`logs of ${name} show "ready"`, 50, 100, async () =>
      (await this.ok(['logs', name])).includes('ready'),
    );
    await this.ok(['pause', name]);
    const paused = await this.ok(['inspect', '-f', '{{.State.Status}}', name]);
    if (paused.trim() !== 'paused') throw new Error(`after pause the state is ${paused.trim()}`);
    await this.ok(['unpause', name]);
    const stats = await this.ok(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}}', name]);
    if (!stats.includes(name)) throw new Error(`stats --no-stream printed ${JSON.stringify(stats)}`);
    await this.ok(['stop', '-t', '10', name]);
    const code = await this.ok(['inspect', '-f', '{{.State.ExitCode}}', name]);
    if (code.trim() !== '0') throw new Error(`stopped with exit code ${code.trim()}, not 0`);
    await this.ok(['rm', name]);
  }

  private async userNetwork(net: string, names: [string, string]): Promise<void> {
    const id = (await this.ok(['network', 'create', net])).trim();
    const bridge = await this.ok([
      'network',
      'inspect',
      '-f',
      '{{index .Options "com.docker.network.bridge.name"}}',
      id,
    ]);
    // Docker's default name when the option is unset (the template prints "" or "<no value>").
    this.owned.bridges.add(/^[\w.-]{1,15}$/.test(bridge.trim()) ? bridge.trim() : `br-${id.slice(0, 12)}`);
    const ips: string[] = [];
    for (const name of names) {
      await this.ok(['run', '-d', ...this.cg, '--network', net, '--name', name, 'busybox', 'sleep', '600']);
      this.counts.containers++;
      const format = `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`;
      ips.push((await this.ok(['inspect', '-f', format, name])).trim());
    }
    // Each resolves the other by name through the network's DNS and reaches it.
    for (const [from, to, ip] of [
      [names[0], names[1], ips[1]],
      [names[1], names[0], ips[0]],
    ]) {
      const answer = await this.ok(['exec', from ?? '', 'ping', '-c', '1', '-W', '5', to ?? '']);
      if (!answer.includes(`(${ip})`))
        throw new Error(`ping ${to} from ${from} did not reach ${ip}:\n${answer}`);
    }
    await this.ok(['rm', '-f', ...names]);
    await this.ok(['network', 'rm', net]);
  }

  private async publishedPort(name: string, i: number): Promise<void> {
    await this.ok([
      'run',
      '-d',
      ...this.cg,
      '--name',
      name,
      '-p',
      '127.0.0.1::8080',
      'busybox',
      'sh',
      '-c',
      `mkdir /www && echo soak-${i} > /www/index.html && exec httpd -f -p 8080 -h /www`,
    ]);
    this.counts.containers++;
    const mapping = await this.ok(['port', name, '8080/tcp']);
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(mapping)?.[1]);
    if (!(port > 0)) throw new Error(`docker port printed ${JSON.stringify(mapping)}`);
    let body = '';
    await until(`GET 127.0.0.1:${port}`, 50, 100, async () => {
      body = await httpGet(port, '/index.html').then(
        (res) => (res.status === 200 ? res.body : ''),
        () => '',
      );
      return body !== '';
    });
    if (body !== `soak-${i}\n`) throw new Error(`the published port answered ${JSON.stringify(body)}`);
    await this.ok(['rm', '-f', name]);
  }

  private async volume(volume: string, i: number): Promise<void> {
    await this.ok(['volume', 'create', volume]);
    await this.ok([
      'run',
      '--rm',
      ...this.cg,
      '--network',
      'none',
      '-v',
      `${volume}:/data`,
      'busybox',
      'sh',
      '-c',
      `echo ${i} > /data/f`,
    ]);
    const read = await this.ok([
      'run',
      '--rm',
      ...this.cg,
      '--network',
      'none',
      '-v',
      `${volume}:/data:ro`,
      'busybox',
      'cat',
      '/data/f',
    ]);
    if (read !== `${i}\n`) throw new Error(`the volume holds ${JSON.stringify(read)}`);
    this.counts.containers += 2;
    await this.ok(['volume', 'rm', volume]);
  }

  private async imageTag(tag: string): Promise<void> {
    await this.ok(['tag', 'busybox:latest', tag]);
    const id = await this.ok(['image', 'inspect', '-f', '{{.Id}}', tag]);
    const base = await this.ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox:latest']);
    if (id !== base) throw new Error(`${tag} is ${id.trim()}, not busybox's ${base.trim()}`);
    await this.ok(['rmi', tag]);
  }

  private async build(): Promise<void> {
    const args = ['build', '-q', '--cgroup-parent', this.target.cgroupParent, '-t', 'soak-build:latest'];
    await this.ok([...args, join(this.target.workDir, 'build')], 180_000, { DOCKER_BUILDKIT: '0' });
    const out = await this.ok(['run', '--rm', ...this.cg, '--network', 'none', 'soak-build:latest']);
    if (out !== 'built\n') throw new Error(`the built image printed ${JSON.stringify(out)}`);
    this.counts.containers++;
  }

  private async restartPolicies(onFailure: string, always: string): Promise<void> {
    await this.ok([
      'run',
      '-d',
      ...this.cg,
      '--network',
      'none',
      '--name',
      onFailure,
      '--restart',
      'on-failure:2',
      'busybox',
      'sh',
      '-c',
      'exit 3',
    ]);
    await this.ok([
      'run',
      '-d',
      ...this.cg,
      '--name',
      always,
      '--restart',
      'always',
      'busybox',
      'sh',
      '-c',
      'sleep 0.2; exit 1',
    ]);
    this.counts.containers += 2;
    // Back-off 100, 200 ms: two restarts, then it stays exited with the last code.
    await until(`${onFailure} gives up after 2 restarts`, 100, 200, async () => {
      const state = await this.ok([
        'inspect',
        '-f',
        '{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}',
        onFailure,
      ]);
      return state.trim() === 'exited 2 3';
    });
    await until(`${always} restarted twice`, 100, 200, async () => {
      const count = await this.ok(['inspect', '-f', '{{.RestartCount}}', always]);
      return Number(count.trim()) >= 2;
    });
    // Removed while it crashes and restarts: the pending restart must go with it.
    await this.ok(['rm', '-f', always, onFailure]);
  }

  private async eventConsumers(i: number, since: string): Promise<void> {
    // One consumer hangs up as soon as berthd has subscribed it, one after its first event.
    const early = openEvents(this.target.socket, { type: ['container'] });
    const reader = openEvents(this.target.socket, { type: ['container'], event: ['destroy'] });
    this.counts.eventStreams += 2;
    try {
      await early.ready;
      early.close();
      await reader.ready;
      const seen = new Promise<void>((resolve) => (reader.onEvent = resolve));
      await this.ok(['run', '--rm', ...this.cg, '--network', 'none', 'busybox', 'true']);
      this.counts.containers++;
      await within(seen, 30_000, 'no destroy event within 30 s of a run --rm');
    } finally {
      early.close();
      reader.close();
      await Promise.all([early.ended, reader.ended]);
    }
    // A bounded consumer through the docker CLI: the kept events, then it ends by itself. The
    // times keep their milliseconds: a whole second could end before this lane's own events.
    const until = (Date.now() / 1000).toFixed(3);
    const past = await this.ok(['events', '--since', since, '--until', until, '--filter', 'type=container']);
    if (!past.includes('container')) throw new Error(`docker events of iteration ${i} printed nothing`);
    this.counts.eventStreams++;
  }

  private async burst(i: number, size: number): Promise<void> {
    const results = await Promise.allSettled(
      Array.from({ length: size }, async (_, j) => {
        const network = j % 2 === 0 ? ['--network', 'none'] : [];
        const out = await this.ok([
          'run',
          '--rm',
          ...this.cg,
          ...network,
          'busybox',
          'echo',
          `burst-${i}-${j}`,
        ]);
        if (out !== `burst-${i}-${j}\n`)
          throw new Error(`burst container ${j} printed ${JSON.stringify(out)}`);
        this.counts.containers++;
      }),
    );
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [describe(r.reason)] : []));
    if (failed.length > 0) throw new Error(`${failed.length} of ${size} failed: ${failed.join('; ')}`);
  }

  /** One iteration: every lane at once, then a burst of `burstSize` run --rm. */
  async iteration(i: number, burstSize = 10): Promise<void> {
    const since = (Date.now() / 1000 - 1).toFixed(3);
    const n = (what: string): string => `soak${i}-${what}`;
    await Promise.all([
      this.lane(i, 'run --rm', () => this.runRm(i)),
      this.lane(
        i,
        'lifecycle',
        () => this.lifecycle(n('life')),
        () => this.removeIfPresent(n('life')),
      ),
      this.lane(
        i,
        'user network',
        () => this.userNetwork(n('net'), [n('alpha'), n('beta')]),
        async () => {
          await this.removeIfPresent(n('alpha'), n('beta'));
          await this.removeNetworks([n('net')]);
        },
      ),
      this.lane(
        i,
        'published port',
        () => this.publishedPort(n('web'), i),
        () => this.removeIfPresent(n('web')),
      ),
      this.lane(
        i,
        'volume',
        () => this.volume(n('vol'), i),
        () => this.removeVolumes([n('vol')]),
      ),
      this.lane(i, 'image tag', () => this.imageTag(`soak-tag:${i}`)),
      this.lane(i, 'build', () => this.build()),
      this.lane(
        i,
        'restart policies',
        () => this.restartPolicies(n('onfail'), n('always')),
        () => this.removeIfPresent(n('onfail'), n('always')),
      ),
      this.lane(i, 'event consumers', () => this.eventConsumers(i, since)),
    ]);
    await this.lane(i, `burst of ${burstSize}`, () => this.burst(i, burstSize));
  }

  private async removeNetworks(names: string[]): Promise<void> {
    const listed = await this.ok(['network', 'ls', '--format', '{{.Name}}']);
    const left = listed.split('\n').filter((name) => names.includes(name));
    if (left.length > 0) await this.ok(['network', 'rm', ...left]);
  }

  private async removeVolumes(names: string[]): Promise<void> {
    const listed = await this.ok(['volume', 'ls', '--format', '{{.Name}}']);
    const left = listed.split('\n').filter((name) => names.includes(name));
    if (left.length > 0) await this.ok(['volume', 'rm', '-f', ...left]);
  }

  /**
   * After the last iteration: nothing of the workload may be left in berthd's lists. Anything
   * found is an error and is removed, so the leak check then judges berthd's own teardown.
   */
  async quiesce(): Promise<void> {
    const containers = (await this.ok(['ps', '-aq'])).split('\n').filter(Boolean);
    if (containers.length > 0) {
      this.errors.push(
        `after the workload ${containers.length} containers remained: ${containers.join(' ')}`,
      );
      await this.ok(['rm', '-f', ...containers]);
    }
    const networks = (await this.ok(['network', 'ls', '--format', '{{.Name}}']))
      .split('\n')
      .filter((name) => name.startsWith('soak'));
    if (networks.length > 0) {
      this.errors.push(`after the workload networks remained: ${networks.join(' ')}`);
      await this.ok(['network', 'rm', ...networks]);
    }
    const volumes = (await this.ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean);
    if (volumes.length > 0) {
      this.errors.push(`after the workload volumes remained: ${volumes.join(' ')}`);
      await this.ok(['volume', 'rm', '-f', ...volumes]);
    }
  }
}
