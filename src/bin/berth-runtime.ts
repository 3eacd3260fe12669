import { main } from '../runtime/cli.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
