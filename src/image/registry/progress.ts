/** Per-layer progress of a pull or push, in Docker's vocabulary, for the CLI and API to render. */

export const PULL_STATUS = {
  pullingFsLayer: 'Pulling fs layer',
  waiting: 'Waiting',
  downloading: 'Downloading',
  retrying: 'Retrying',
  verifyingChecksum: 'Verifying Checksum',
  downloadComplete: 'Download complete',
  alreadyExists: 'Already exists',
} as const;

export const PUSH_STATUS = {
  preparing: 'Preparing',
  waiting: 'Waiting',
  pushing: 'Pushing',
  pushed: 'Pushed',
  layerAlreadyExists: 'Layer already exists',
  /** Followed by " from <repository>". */
  mountedFrom: 'Mounted from',
} as const;

export interface ProgressEvent {
  /** Short digest of the layer (12 hex characters), like Docker's progress ids. */
  id: string;
  status: string;
  progressDetail?: { current: number; total: number };
}

export type ProgressCallback = (event: ProgressEvent) => void;

/** Bytes between two "Downloading"/"Pushing" events of one layer (Docker uses 512 KiB too). */
export const PROGRESS_STEP = 512 * 1024;

/** Emits byte progress at most every PROGRESS_STEP bytes, and always the final count. */
export function byteProgress(
  emit: ProgressCallback | undefined,
  id: string,
  status: string,
): (current: number, total: number) => void {
  let last = -Infinity;
  return (current, total) => {
    if (!emit || (current - last < PROGRESS_STEP && current !== total)) return;
    last = current;
    emit({ id, status, progressDetail: { current, total } });
  };
}

/** Run `tasks` with at most `limit` running at once; rejects with the first failure after all settle. */
export async function runBounded<T>(
  items: T[],
  limit: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      try {
        await task(items[index] as T, index);
      } catch (err) {
        errors.push(err);
        next = items.length; // start nothing new after a failure
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (errors.length > 0) throw errors[0];
}
