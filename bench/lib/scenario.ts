import type { Summary } from './measure.js';
import type { Engines } from './references.js';

/** One bar of the chart: a berth/reference ratio and the goal it should reach. */
export interface ChartBar {
  label: string;
  value: number;
  /** The ratio the goal asks for (e.g. 0.2 for "5x faster"); none when the goal is absolute. */
  goal?: number;
  /** Whether smaller ratios are better (times, memory) or larger ones (throughput). */
  better: 'lower' | 'higher';
}

export interface ScenarioResult {
  name: string;
  /** The goal in words, as the issue states it. */
  goal: string;
  /** Whether the goal is met (undefined when this run cannot tell, e.g. --quick). */
  met?: boolean;
  contenders: Summary[];
  /** Named ratios, e.g. "berth-library / floor". */
  ratios: Record<string, number>;
  /** Other figures (memory in KiB, ...). */
  figures?: Record<string, number>;
  notes?: string[];
  chart?: ChartBar[];
}

export interface ScenarioOptions {
  quick: boolean;
  /** A scratch directory the scenario may use; removed afterwards. */
  workDir: string;
  /** berthd always; dockerd and podman unless --quick. */
  engines: Engines;
}

export interface Scenario {
  name: string;
  run(options: ScenarioOptions): Promise<ScenarioResult | ScenarioResult[]>;
}
