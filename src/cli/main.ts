import { BERTH_VERSION } from '../common/version.js';

const USAGE = `Usage:  berth [OPTIONS] COMMAND

A container engine for Linux with Docker's commands.

Options:
  -v, --version   Print version information and quit
  -h, --help      Print usage

The engine commands (run, ps, images, pull, ...) arrive with berthd; see the README for what works today.
`;

/** Entry point of the berth command line; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  const [command] = args;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === 'version') {
    process.stdout.write(`Client:\n Version:    ${BERTH_VERSION}\n`);
    return 0;
  }
  process.stderr.write(`berth: '${command}' is not a berth command yet.\nSee 'berth --help'.\n`);
  return 125;
}
