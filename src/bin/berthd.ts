import { BERTH_VERSION } from '../common/version.js';

const args = process.argv.slice(2);
if (args[0] === '--version' || args[0] === '-v') {
  process.stdout.write(`berthd version ${BERTH_VERSION}\n`);
} else if (args[0] === '--help' || args[0] === '-h') {
  process.stdout.write('Usage:  berthd [OPTIONS]\n\nThe berth daemon: serves the Docker Engine API.\n');
} else {
  process.stderr.write('berthd: the daemon is not implemented yet (see the README for what works today)\n');
  process.exitCode = 1;
}
