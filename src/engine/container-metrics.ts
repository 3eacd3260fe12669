/**
 * Per-container Prometheus metrics for the metrics-addr listener: CPU, memory, pids and block I/O
 * from each running container's cgroup, and state and restarts of every container. Labels are
 * the full id, the name and the image reference, like cAdvisor's container metrics.
 */
import type { MetricCollector, MetricFamily, MetricSample, MetricType } from '../api/metrics.js';
import type { CgroupStats } from '../linux/cgroups/types.js';
import { isLive, type ContainerRecord } from './container-record.js';

export interface ContainerMetricsSource {
  containers(): ContainerRecord[];
  /** The cgroup's statistics; a container whose cgroup cannot be read is left out. */
  stats(id: string): Promise<CgroupStats>;
}

const labelsOf = (record: ContainerRecord): Record<string, string> => ({
  id: record.id,
  name: record.name,
  image: record.imageRef,
});

class Families {
  private readonly families = new Map<string, MetricFamily>();

  add(name: string, help: string, type: MetricType, sample: MetricSample): void {
    let family = this.families.get(name);
    if (!family) {
      family = { name, help, type, samples: [] };
      this.families.set(name, family);
    }
    family.samples.push(sample);
  }

  list(): MetricFamily[] {
    return [...this.families.values()];
  }
}

/** The metric families of all containers; one scrape reads each running container's cgroup once. */
export async function collectContainerMetrics(source: ContainerMetricsSource): Promise<MetricFamily[]> {
  const families = new Families();
  const records = source.containers();
  for (const record of records) {
    const labels = labelsOf(record);
    families.add('berth_container_running', 'Whether the container is running (1) or not (0).', 'gauge', {
      labels,
      value: isLive(record.state) ? 1 : 0,
    });
    families.add(
      'berth_container_restarts_total',
      'Restarts of the container by its restart policy.',
      'counter',
      { labels, value: record.restartCount },
    );
  }
  const running = records.filter((record) => isLive(record.state));
  const stats = await Promise.all(running.map((record) => source.stats(record.id).catch(() => undefined)));
  running.forEach((record, index) => {
    const sample = stats[index];
    if (!sample) return;
    const labels = labelsOf(record);
    if (sample.cpu) {
      families.add(
        'berth_container_cpu_usage_seconds_total',
        'CPU time the container used, in seconds.',
        'counter',
        { labels, value: sample.cpu.usageTotal / 1e9 },
      );
      families.add(
        'berth_container_cpu_throttled_seconds_total',
        'Time the container was throttled by its CPU quota, in seconds.',
        'counter',
        { labels, value: sample.cpu.throttling.throttledTime / 1e9 },
      );
    }
    if (sample.memory) {
      families.add(
        'berth_container_memory_usage_bytes',
        'Memory the container uses, page cache included.',
        'gauge',
        {
          labels,
          value: sample.memory.usage,
        },
      );
      families.add('berth_container_memory_rss_bytes', 'Anonymous memory of the container.', 'gauge', {
        labels,
        value: sample.memory.rss,
      });
      if (sample.memory.limit !== undefined)
        families.add('berth_container_memory_limit_bytes', "The container's memory limit.", 'gauge', {
          labels,
          value: sample.memory.limit,
        });
      families.add(
        'berth_container_oom_kills_total',
        'Processes of the container the OOM killer ended.',
        'counter',
        {
          labels,
          value: sample.memory.oomKills,
        },
      );
    }
    if (sample.pids)
      families.add('berth_container_pids', 'Processes and threads in the container.', 'gauge', {
        labels,
        value: sample.pids.current,
      });
    if (sample.io) {
      const sum = (key: 'readBytes' | 'writeBytes'): number =>
        (sample.io?.devices ?? []).reduce((total, device) => total + device[key], 0);
      families.add(
        'berth_container_blkio_read_bytes_total',
        'Bytes the container read from block devices.',
        'counter',
        {
          labels,
          value: sum('readBytes'),
        },
      );
      families.add(
        'berth_container_blkio_write_bytes_total',
        'Bytes the container wrote to block devices.',
        'counter',
        { labels, value: sum('writeBytes') },
      );
    }
  });
  families.add('berth_containers', 'Containers known to berthd, by state.', 'gauge', {
    labels: { state: 'running' },
    value: running.length,
  });
  families.add('berth_containers', 'Containers known to berthd, by state.', 'gauge', {
    labels: { state: 'stopped' },
    value: records.length - running.length,
  });
  return families.list();
}

export function containerMetricsCollector(source: ContainerMetricsSource): MetricCollector {
  return () => collectContainerMetrics(source);
}
