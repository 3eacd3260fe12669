/**
 * Progress of image operations in Docker's JSON-message vocabulary: per-layer events carry the
 * layer's short ID (`Downloading`, `Extracting`, `Pull complete`), others only a status line
 * (`Digest: sha256:...`, `Loaded image: busybox:latest`).
 */
export interface ImageProgress {
  id?: string;
  status: string;
  progressDetail?: { current: number; total: number };
}

export type ImageProgressCallback = (event: ImageProgress) => void;
