import { BERTH_VERSION, OCI_RUNTIME_SPEC_VERSION } from '../common/version.js';

/** Entry point of the berth-runtime command line (the OCI runtime CLI); returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [command] = args;
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`berth-runtime version ${BERTH_VERSION}\nspec: ${OCI_RUNTIME_SPEC_VERSION}\n`);
    return 0;
  }
  process.stderr.write(`berth-runtime: command ${JSON.stringify(command ?? '')} is not implemented yet\n`);
  return 1;
}
