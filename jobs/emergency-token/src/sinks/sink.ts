import type { BreakGlassCredential } from '../credential.ts';

/** One delivery: where it went, precisely enough to read that copy back or take it away again. */
export interface Delivery {
  /** Printable, recorded in KV as `sink`, e.g. s3://bucket/key?versionId=abc. Never holds a secret. */
  location: string;
  /** The sink's own version of that copy (S3 VersionId, Bitwarden revision date). */
  version: string;
}

/** Where the break-glass credential is kept out of band. */
export interface CredentialSink {
  readonly name: string;
  /** Checks, before anything is created, that a delivery can work (bucket versioned, login works). */
  preflight(signal?: AbortSignal): Promise<void>;
  deliver(credential: BreakGlassCredential, signal?: AbortSignal): Promise<Delivery>;
  /** Reads back exactly the copy `deliver` wrote, decrypted, for the fingerprint comparison. */
  readBack(delivery: Delivery, signal?: AbortSignal): Promise<BreakGlassCredential>;
  /** What an operator would get now (reveal, and a later run's crash recovery); undefined when empty. */
  current(signal?: AbortSignal): Promise<{ delivery: Delivery; credential: BreakGlassCredential } | undefined>;
  /** Takes a failed delivery away so that the copy before it is current again. */
  undo(delivery: Delivery, signal?: AbortSignal): Promise<void>;
}

/** The sink failed; `step` says which part (preflight, deliver, read-back, undo). */
export class SinkError extends Error {
  override readonly name = 'SinkError';
  constructor(
    readonly sink: string,
    readonly step: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${sink} ${step}: ${message}`, options);
  }
}
