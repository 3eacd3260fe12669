/**
 * Teardown that runs once, in reverse order of registration, on normal completion, on failure
 * and on SIGINT/SIGTERM, so no daemon, mount, bridge or firewall chain outlives the suite.
 */
type Step = { what: string; run: () => Promise<void> };

const steps: Step[] = [];
let running: Promise<void> | undefined;

export function onCleanup(what: string, run: () => Promise<void>): void {
  steps.push({ what, run });
}

export function cleanupAll(): Promise<void> {
  running ??= (async () => {
    while (steps.length > 0) {
      const step = steps.pop();
      if (!step) break;
      try {
        await step.run();
      } catch (err) {
        process.stderr.write(
          `bench: cleanup of ${step.what} failed: ${err instanceof Error ? err.message : String(err)}\n`,
        );
      }
    }
  })();
  return running;
}

export function cleanupOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}, tearing down\n`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
}
