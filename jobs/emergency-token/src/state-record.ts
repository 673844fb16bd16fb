import { JobFailure, z, type Logger } from '@vaultkeeper/runtime';
import { VaultError, type VaultClient } from '@vaultkeeper/vault';
import { CREDENTIAL_KINDS } from './credential.ts';

const iso = z.iso.datetime({ offset: true });

/** A credential made by a run that has not finished: the next run finishes or undoes it. */
export const pendingCredential = z.object({
  runId: z.string(),
  startedAt: iso,
  kind: z.enum(CREDENTIAL_KINDS),
  /** Absent only between the intent and Vault's answer to the create call. */
  accessor: z.string().optional(),
  createdAt: iso.optional(),
  expiresAt: iso.optional(),
  fingerprint: z.string().optional(),
});
export type PendingCredential = z.infer<typeof pendingCredential>;

/**
 * The job's record in Vault KV v2 (default secret/data/vaultkeeper/emergency-token/state): what is
 * current, where it was delivered, and what a crashed or failed run left behind. Never the
 * credential itself. `accessor`, `createdAt`, `expiresAt`, `fingerprint` and `sink` are read by
 * other tools (the kms-probe reads `expiresAt`): keep those names and keep them at the top level.
 */
export const stateRecord = z.looseObject({
  kind: z.enum(CREDENTIAL_KINDS).optional(),
  accessor: z.string().optional(),
  createdAt: iso.optional(),
  expiresAt: iso.optional(),
  fingerprint: z.string().optional(),
  /** Where the current credential was delivered, e.g. s3://bucket/key?versionId=... */
  sink: z.string().optional(),
  rotatedAt: iso.optional(),
  rotatedBy: z.string().optional(),
  runId: z.string().optional(),
  pending: pendingCredential.optional(),
  /** Accessors of replaced credentials whose revocation failed; every run tries again. */
  unrevoked: z.array(z.object({ kind: z.enum(CREDENTIAL_KINDS), accessor: z.string(), since: iso })).optional(),
  /** Who wrote this version: tells our own retried write apart from another run's. */
  revision: z.string().optional(),
});
export type StateRecord = z.infer<typeof stateRecord>;

export interface StoredState {
  record: StateRecord;
  /** KV version the record was read at; 0 when there is none. The next write must name it (check-and-set). */
  version: number;
}

/** Another run changed the record between our read and our write. */
export class ConcurrentRunError extends JobFailure {
  constructor(path: string) {
    super(`the state record ${path} was changed by another run meanwhile; nothing more was done by this one`, { check: 'check-and-set' });
  }
}

const kvRead = z.object({ data: stateRecord.nullable(), metadata: z.looseObject({ version: z.number() }) });
const kvMetadata = z.looseObject({ current_version: z.number() });
const kvWrite = z.looseObject({ version: z.number() });

/**
 * The record, read and written with KV v2 check-and-set so that two runs (a CronJob run and a
 * manual `kubectl create job --from`) cannot interleave: every write names the version it read,
 * and Vault refuses it if another write came in between.
 */
export class StateStore {
  readonly location: string;
  private seq = 0;

  constructor(
    private readonly client: VaultClient,
    private readonly mount: string,
    private readonly path: string,
    private readonly runId: string,
    private readonly log: Logger,
  ) {
    this.location = `${mount}/data/${path}`;
  }

  async read(signal?: AbortSignal): Promise<StoredState> {
    const opts = signal ? { signal } : {};
    try {
      const res = await this.client.read(`${this.mount}/data/${this.path}`, kvRead, opts);
      return { record: res.data ?? {}, version: res.metadata.version };
    } catch (err) {
      if (!(err instanceof VaultError && err.status === 404)) throw err;
    }
    // 404 is either "never written" or "latest version deleted"; check-and-set needs the
    // difference (cas=0 only works for a key that never existed).
    try {
      const meta = await this.client.read(`${this.mount}/metadata/${this.path}`, kvMetadata, opts);
      return { record: {}, version: meta.current_version };
    } catch (err) {
      if (err instanceof VaultError && err.status === 404) return { record: {}, version: 0 };
      throw err;
    }
  }

  /**
   * Writes `record` if the stored version is still `version`; returns the new state. Not cut short
   * by SIGTERM: a record half-written (the credential made, its accessor not noted) is the one
   * thing the next run could not clean up, so it gets its own short deadline instead of the job's signal.
   */
  async write(record: StateRecord, version: number): Promise<StoredState> {
    const revision = `${this.runId}/${++this.seq}`;
    const next = { ...dropUndefined(record), revision };
    try {
      const res = await this.client.write(`${this.mount}/data/${this.path}`, { options: { cas: version }, data: next }, kvWrite, {
        // Safe to resend: check-and-set makes a second copy fail instead of applying twice.
        idempotent: true,
        signal: AbortSignal.timeout(20_000),
        deadlineSeconds: 20,
      });
      return { record: next, version: res?.version ?? version + 1 };
    } catch (err) {
      if (!isCasMismatch(err)) throw err;
      // A resent write that had in fact been applied fails check-and-set against itself.
      const now = await this.read(AbortSignal.timeout(10_000));
      if (now.record.revision === revision) {
        this.log.debug({ state: this.location }, 'state write had already been applied');
        return now;
      }
      throw new ConcurrentRunError(this.location);
    }
  }
}

function isCasMismatch(err: unknown): boolean {
  return err instanceof VaultError && err.status === 400 && err.errors.some((e) => /check-and-set/i.test(e));
}

function dropUndefined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
