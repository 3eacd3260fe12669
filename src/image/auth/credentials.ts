/** Registry credentials and where they come from. */

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth refresh token (`identitytoken` in config.json, or a helper's `<token>` user). */
  identityToken?: string;
}

export interface CredentialProvider {
  /** Credentials for a registry host (`docker.io`, `localhost:5000`), or undefined for anonymous. */
  get(registry: string): Promise<Credentials | undefined>;
}

/** Credentials given directly, by registry host: for tests and `--username/--password` style callers. */
export class StaticCredentials implements CredentialProvider {
  constructor(private readonly byRegistry: Record<string, Credentials>) {}

  async get(registry: string): Promise<Credentials | undefined> {
    return this.byRegistry[registry];
  }
}

/** The server address Docker uses for Docker Hub in config.json and credential helpers. */
export const DOCKER_HUB_INDEX = 'https://index.docker.io/v1/';

/**
 * The host part of a config.json key: `https://index.docker.io/v1/` -> `index.docker.io`,
 * `http://host:5000` -> `host:5000`, `host:5000` -> `host:5000`.
 */
export function hostOfServerAddress(address: string): string {
  const withoutScheme = address.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = withoutScheme.indexOf('/');
  return slash === -1 ? withoutScheme : withoutScheme.slice(0, slash);
}

/** Docker Hub is stored under its legacy index address and host names. */
export function serverAddressesFor(registry: string): string[] {
  if (registry === 'docker.io' || registry === 'index.docker.io' || registry === 'registry-1.docker.io') {
    return [DOCKER_HUB_INDEX, 'docker.io', 'index.docker.io', 'registry-1.docker.io'];
  }
  return [registry];
}
