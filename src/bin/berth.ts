import { BERTH_VERSION } from '../common/version.js';

if (process.argv[2] === '--version' || process.argv[2] === '-v') {
  process.stdout.write(`berth version ${BERTH_VERSION}\n`);
} else {
  // Loaded only for real commands, so --version stays as fast as starting node.
  void import('../cli/main.js').then(async ({ main }) => {
    const code = await main(process.argv.slice(2));
    // Attached sessions may leave stdin or signal handlers behind: exit with the command's code.
    process.exit(code);
  });
}
