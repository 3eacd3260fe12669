import type { Endpoint, PortMapping } from '../network/network-record.js';
import type { ContainerConfig, EndpointSettings, HostConfig } from './docker-types.js';

export type ContainerStatus =
  'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/** The container's state as Docker's inspect shows it. */
export interface ContainerState {
  Status: ContainerStatus;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  /** Set when the container has a health check (health.ts keeps it). */
  Health?: HealthState;
}

/** Docker's State.Health: the status, the current run of failures and the last five probes. */
export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }>;
}

/** What berthd keeps of a container (config.v2.json). */
export interface ContainerRecord {
  id: string;
  name: string;
  created: string;
  path: string;
  args: string[];
  /** Image ID (config digest) and the reference the user gave. */
  image: string;
  imageRef: string;
  /** The create body's Config merged with the image's defaults, as Docker stores it. */
  config: ContainerConfig;
  hostConfig: HostConfig;
  state: ContainerState;
  restartCount: number;
  /** Snapshot key of the writable layer, and the chain ID under it. */
  snapshotKey: string;
  snapshotParent?: string;
  logPath: string;
  /** Set by `docker stop`/`kill`: the restart policy must not bring it back. */
  manuallyStopped?: boolean;
  /** Named and anonymous volumes by container destination (resolved at create, like Docker). */
  volumes?: Record<string, { name: string; anonymous: boolean; readOnly: boolean; noCopy: boolean }>;
  /** Whether the container ever started (volume content is copied from the image only before). */
  everStarted?: boolean;
  /** Networks the container joins (by name, interface order), with the settings asked for. */
  networks?: Record<string, EndpointSettings>;
  /** While it runs: its network namespace, endpoints by network name, published ports. */
  netnsPath?: string;
  endpoints?: Record<string, Endpoint>;
  ports?: PortMapping[];
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * Whether the container has processes (running or paused). Like Docker, a container waiting
 * between two runs of its restart policy is `Running` and `Restarting` too, but has none.
 */
export const isLive = (state: ContainerState): boolean => state.Running && !state.Restarting;

/** Docker's refusal of exec, attach, pause and the like between two runs of a restart policy. */
export const restartingMessage = (id: string): string =>
  `Container ${id} is restarting, wait until the container is running`;

export function initialState(): ContainerState {
  return {
    Status: 'created',
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 0,
    ExitCode: 0,
    Error: '',
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
  };
}

/** Docker's "Up 5 minutes" / "Exited (0) 2 hours ago" / "Created". */
export function statusText(state: ContainerState, now = Date.now()): string {
  switch (state.Status) {
    case 'running':
      return `Up ${humanDuration(now - Date.parse(state.StartedAt))}${healthSuffix(state.Health)}`;
    case 'paused':
      return `Up ${humanDuration(now - Date.parse(state.StartedAt))} (Paused)`;
    case 'restarting':
      return `Restarting (${state.ExitCode}) ${humanDuration(now - Date.parse(state.FinishedAt))} ago`;
    case 'exited':
      return `Exited (${state.ExitCode}) ${humanDuration(now - Date.parse(state.FinishedAt))} ago`;
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    default:
      return 'Created';
  }
}

/** Docker's " (health: starting)", " (healthy)", " (unhealthy)" after "Up ...". */
function healthSuffix(health: HealthState | undefined): string {
  if (health === undefined) return '';
  return health.Status === 'starting' ? ' (health: starting)' : ` (${health.Status})`;
}

/** Docker's units.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.round(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.round(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.round(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.round(hours / 24 / 30)} months`;
  return `${Math.round(hours / 24 / 365)} years`;
}
