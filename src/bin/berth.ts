import { BERTH_VERSION } from '../common/version.js';
import { main } from '../cli/main.js';

if (process.argv[2] === '--version' || process.argv[2] === '-v') {
  process.stdout.write(`berth version ${BERTH_VERSION}\n`);
} else {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
