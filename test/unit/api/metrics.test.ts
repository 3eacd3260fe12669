import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import {
  metricsHandler,
  MetricsRegistry,
  processCollector,
  renderMetrics,
  METRICS_CONTENT_TYPE,
} from '../../../src/api/metrics.js';

test('families render in the Prometheus text format with escaping', () => {
  const text = renderMetrics([
    {
      name: 'berth_containers',
      help: 'Containers by state.\nSecond line \\ slash',
      type: 'gauge',
      samples: [
        { labels: { state: 'running' }, value: 2 },
        { labels: { state: 'say "hi"\n' }, value: 0.5 },
      ],
    },
    {
      name: 'x_total',
      help: 'h',
      type: 'counter',
      samples: [{ value: Infinity }, { value: NaN }, { value: -Infinity }],
    },
  ]);
  assert.equal(
    text,
    '# HELP berth_containers Containers by state.\\nSecond line \\\\ slash\n# TYPE berth_containers gauge\n' +
      'berth_containers{state="running"} 2\nberth_containers{state="say \\"hi\\"\\n"} 0.5\n' +
      '# HELP x_total h\n# TYPE x_total counter\nx_total +Inf\nx_total NaN\nx_total -Inf\n',
  );
});

test('malformed or duplicated names are errors', () => {
  assert.throws(
    () => renderMetrics([{ name: '1bad', help: '', type: 'gauge', samples: [] }]),
    /invalid metric name/,
  );
  assert.throws(
    () =>
      renderMetrics([
        { name: 'ok', help: '', type: 'gauge', samples: [{ labels: { 'a-b': 'x' }, value: 1 }] },
      ]),
    /invalid label name/,
  );
  const twice = { name: 'dup', help: '', type: 'gauge' as const, samples: [] };
  assert.throws(() => renderMetrics([twice, twice]), /collected twice/);
});

test('collectors register, unregister, and are asked at each scrape', async () => {
  const registry = new MetricsRegistry();
  let count = 0;
  const remove = registry.register(async () => [
    { name: 'scrapes', help: 'n', type: 'counter', samples: [{ value: ++count }] },
  ]);
  assert.match(await registry.render(), /^scrapes 1$/m);
  assert.match(await registry.render(), /^scrapes 2$/m);
  remove();
  assert.equal(await registry.render(), '');
});

test('process metrics describe this process', async () => {
  const registry = new MetricsRegistry();
  registry.register(processCollector());
  const families = await registry.collect();
  const value = (name: string): number => families.find((f) => f.name === name)?.samples[0]?.value ?? NaN;
  assert.ok(value('process_resident_memory_bytes') > 1_000_000);
  assert.ok(value('process_open_fds') >= 3);
  assert.ok(value('process_max_fds') >= value('process_open_fds'));
  assert.ok(value('process_virtual_memory_bytes') >= value('process_resident_memory_bytes'));
  assert.ok(Math.abs(value('process_start_time_seconds') - (Date.now() / 1000 - process.uptime())) < 5);
  assert.ok(value('process_cpu_seconds_total') > 0);
});

test('the handler serves GET /metrics only', async (t) => {
  const registry = new MetricsRegistry();
  registry.register(() => [{ name: 'up', help: 'u', type: 'gauge', samples: [{ value: 1 }] }]);
  const server = http.createServer(metricsHandler(registry));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const ok = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('content-type'), METRICS_CONTENT_TYPE);
  assert.equal(await ok.text(), '# HELP up u\n# TYPE up gauge\nup 1\n');
  const other = await fetch(`http://127.0.0.1:${port}/info`);
  assert.equal(other.status, 404);
  await other.text();
  registry.register(() => [{ name: 'bad name', help: '', type: 'gauge', samples: [] }]);
  const broken = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(broken.status, 500);
  assert.match(await broken.text(), /invalid metric name/);
});
