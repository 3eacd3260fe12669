/** Where berth-init (native/init), the PID 1 of `--init` containers, is found on the host. */
import { nativeBinary } from '../common/native-binary.js';

/**
 * $BERTH_INIT, else native/build/berth-init of the checkout this code runs from; undefined when
 * it is not built (the spec builder then refuses --init with a clear message).
 */
export function initBinaryPath(): string | undefined {
  return nativeBinary('berth-init', 'BERTH_INIT');
}
