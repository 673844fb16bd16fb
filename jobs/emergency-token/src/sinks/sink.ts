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
  /** Where it delivers, without a version (s3://bucket/key): a delivery's location starts with it. */
  readonly location: string;
  /** Checks, before anything is created, that a delivery can work (bucket versioned, login works). */
  preflight(signal?: AbortSignal): Promise<void>;
  deliver(credential: BreakGlassCredential, signal?: AbortSignal): Promise<Delivery>;
  /** Reads back exactly the copy `deliver` wrote, decrypted, for the fingerprint comparison. */
  readBack(delivery: Delivery, signal?: AbortSignal): Promise<BreakGlassCredential>;
  /** What an operator would get now (reveal, and a later run's crash recovery); undefined when empty. */
  current(signal?: AbortSignal): Promise<{ delivery: Delivery; credential: BreakGlassCredential; note?: string } | undefined>;
  /**
   * Takes every copy of `credential` out of the sink, so that the copy before them is current
   * again; returns how many it took (0: the sink holds none). By the credential, not by a
   * delivery: a write that landed but whose answer was lost (or cut by SIGTERM, or repeated by a
   * retry) left copies the job never got a version of.
   */
  undo(credential: Pick<BreakGlassCredential, 'accessor'>, signal?: AbortSignal): Promise<number>;
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
