/** The release version; kept in step with package.json by the unit tests. */
export const BERTH_VERSION = '0.1.0';

/** The newest Docker Engine API version berthd speaks, and the oldest it accepts. */
export const API_VERSION = '1.50';
export const MIN_API_VERSION = '1.41';

/** The OCI runtime-spec version berth-runtime implements. */
export const OCI_RUNTIME_SPEC_VERSION = '1.2.0';
