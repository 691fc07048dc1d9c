import type { Readable } from 'node:stream';

/** What was stored for one page: the result event lists one of these per page. */
export interface StoredObject {
  key: string;
  bytes: number;
  sha256: string;
}

/**
 * Where raw responses land. Keys are relative ("meta/insights/act_1/<job>/page-00000.json");
 * a put to an existing key replaces it, which is what makes redelivered jobs idempotent.
 */
export interface ObjectStorage {
  /** Human-readable location, e.g. `file:/abs/data` or `s3://bucket/prefix` (no credentials). */
  readonly location: string;
  /** Stores `body` under `key` atomically (readers never see a partial object). */
  put(key: string, body: Uint8Array | Readable, contentType?: string): Promise<StoredObject>;
  /** Reads an object back, or undefined when absent (tests, tooling). */
  get(key: string): Promise<Buffer | undefined>;
  /** Lists keys under a prefix (tests, tooling). */
  list(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}
