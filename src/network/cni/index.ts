/** The CNI plugin client (spec 1.0.0): configuration files, the client, results. docs/cni.md. */
export { CniClient, DEFAULT_PLUGIN_DIRS } from './client.js';
export type { CniClientOptions } from './client.js';
export { checkNetworkList, loadConfDir, parseConf, parseConfList } from './conf.js';
export { CniPluginError } from './invoke.js';
export { SUPPORTED_CNI_VERSIONS } from './version.js';
export type {
  CniDns,
  CniInterface,
  CniIpConfig,
  CniNetworkList,
  CniPluginConf,
  CniResult,
  CniRoute,
  CniRuntimeConf,
  CniVersionInfo,
} from './types.js';
