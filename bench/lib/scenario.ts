import type { Summary } from './measure.js';

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
}

export interface ScenarioOptions {
  quick: boolean;
  /** A scratch directory the scenario may use; removed afterwards. */
  workDir: string;
}

export interface Scenario {
  name: string;
  run(options: ScenarioOptions): Promise<ScenarioResult>;
}
