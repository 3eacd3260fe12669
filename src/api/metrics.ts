/**
 * Prometheus metrics for the `metrics-addr` listener: a registry of collectors, each returning
 * plain metric families when scraped, rendered in the text exposition format (0.0.4). The
 * daemon registers process metrics; engine parts register collectors of their own.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeError } from '../common/errors.js';
import { countOpenFds } from './host-info.js';

export type MetricType = 'counter' | 'gauge' | 'untyped';

export interface MetricSample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: MetricSample[];
}

export type MetricCollector = () => MetricFamily[] | Promise<MetricFamily[]>;

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const escapeHelp = (text: string): string => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (text: string): string =>
  text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** The text exposition of metric families; a malformed name is an error. */
export function renderMetrics(families: MetricFamily[]): string {
  const seen = new Set<string>();
  let out = '';
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) throw new Error(`invalid metric name ${JSON.stringify(family.name)}`);
    if (seen.has(family.name)) throw new Error(`metric ${family.name} is collected twice`);
    seen.add(family.name);
    out += `# HELP ${family.name} ${escapeHelp(family.help)}\n# TYPE ${family.name} ${family.type}\n`;
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels ?? {});
      for (const [name] of labels) {
        if (!LABEL_NAME.test(name))
          throw new Error(`invalid label name ${JSON.stringify(name)} on ${family.name}`);
      }
      const labelText =
        labels.length === 0
          ? ''
          : `{${labels.map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(',')}}`;
      out += `${family.name}${labelText} ${formatValue(sample.value)}\n`;
    }
  }
  return out;
}

export class MetricsRegistry {
  private readonly collectors = new Set<MetricCollector>();

  /** Adds a collector; the returned function removes it again. */
  register(collector: MetricCollector): () => void {
    this.collectors.add(collector);
    return () => this.collectors.delete(collector);
  }

  async collect(): Promise<MetricFamily[]> {
    const families: MetricFamily[] = [];
    for (const collector of this.collectors) families.push(...(await collector()));
    return families;
  }

  async render(): Promise<string> {
    return renderMetrics(await this.collect());
  }
}

const gauge = (name: string, help: string, value: number): MetricFamily => ({
  name,
  help,
  type: 'gauge',
  samples: [{ value }],
});

/** Virtual memory size from /proc/self/stat (field 23), 0 where unreadable. */
function virtualMemoryBytes(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[20] ?? 0);
  } catch {
    return 0;
  }
}

function maxFds(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === 'unlimited' ? Infinity : Number(soft ?? 0);
  } catch {
    return 0;
  }
}

/** The standard process_* metrics and node's heap, for the daemon process. */
export function processCollector(): MetricCollector {
  const startTime = Date.now() / 1000 - process.uptime();
  return () => {
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    return [
      {
        name: 'process_cpu_seconds_total',
        help: 'Total user and system CPU time spent in seconds.',
        type: 'counter',
        samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
      },
      gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', memory.rss),
      gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.', virtualMemoryBytes()),
      gauge(
        'process_start_time_seconds',
        'Start time of the process since unix epoch in seconds.',
        startTime,
      ),
      gauge('process_open_fds', 'Number of open file descriptors.', countOpenFds()),
      gauge('process_max_fds', 'Maximum number of open file descriptors.', maxFds()),
      gauge('nodejs_heap_size_total_bytes', 'Total size of the V8 heap in bytes.', memory.heapTotal),
      gauge('nodejs_heap_size_used_bytes', 'Used size of the V8 heap in bytes.', memory.heapUsed),
      gauge(
        'nodejs_external_memory_bytes',
        'Memory of C++ objects bound to JavaScript objects.',
        memory.external,
      ),
    ];
  };
}

/** The request handler of the metrics listener: GET /metrics, 404 for anything else. */
export function metricsHandler(
  registry: MetricsRegistry,
  onError: (message: string) => void = () => undefined,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('404 page not found\n');
      return;
    }
    registry.render().then(
      (text) => {
        res.setHeader('Content-Type', METRICS_CONTENT_TYPE);
        res.setHeader('Content-Length', Buffer.byteLength(text));
        res.end(text);
      },
      (err: unknown) => {
        onError(`collecting metrics failed: ${describeError(err)}`);
        res.statusCode = 500;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(`${describeError(err)}\n`);
      },
    );
  };
}
