import { BERTH_VERSION } from '../common/version.js';

// --version answers before the daemon's modules are loaded, so it starts as fast as node does.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  process.stdout.write(`berthd version ${BERTH_VERSION}\n`);
} else {
  const { runDaemon } = await import('../daemon/main.js');
  const code = await runDaemon(args);
  // Exit even if a stray handle would keep the loop alive: systemd waits for this process.
  process.exit(code);
}
