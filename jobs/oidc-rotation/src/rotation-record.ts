// The rotation record: one KV v2 secret that holds the client secret Vault's OIDC config was
// last given (so the config can always be rebuilt from inside Vault), the previous one, a
// pending change written *before* anything else is touched, and the claim ("lock") of the run
// that is changing things. Every write is a KV v2 check-and-set on the version last read, so two
// runs cannot interleave: the second one's write fails and it backs off.
// (KV v2: POST <mount>/data/<path> with options.cas = current version; 0 = only if absent.)
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { JobFailure, registerSecret, z, type Logger } from '@vaultkeeper/runtime';
import { VaultError, VaultUnreachableError, type VaultClient } from '@vaultkeeper/vault';

const heldSecret = z.object({
  secret: z.string().min(1),
  fingerprint: z.string().min(1),
  /** When this secret was set (ISO time). */
  setAt: z.string(),
});
export type HeldSecret = z.infer<typeof heldSecret>;

export const recordSchema = z.object({
  schema: z.literal(1),
  mount: z.string(),
  clientId: z.string(),
  providerPk: z.number().int(),
  application: z.string(),
  /** Key of the fingerprints (fingerprint.ts); random per record. */
  fingerprintKey: z.string().min(1),
  /** The secret Vault's OIDC config was last given; null before the first run wrote one. */
  current: heldSecret.nullable(),
  /** The one before it. */
  previous: heldSecret.nullable(),
  /** A change in progress, stored before Authentik or Vault is touched (write-ahead). */
  pending: z
    .object({
      mode: z.enum(['rotate', 'sync']),
      secret: z.string().min(1),
      fingerprint: z.string().min(1),
      /** What Authentik held before this change: the rollback target of a rotation. */
      authentikBefore: heldSecret.nullable(),
      startedAt: z.string(),
      runId: z.string(),
    })
    .nullable(),
  /**
   * The claim. Whether it lapsed is judged by Vault's clock alone: the version's created_time
   * plus leaseSeconds against Vault's time now. acquiredAt/expiresAt are the holder's clock,
   * for people reading the record; records written before leaseSeconds existed are judged with
   * the reader's own lease.
   */
  lock: z.object({ holder: z.string(), acquiredAt: z.string(), expiresAt: z.string(), leaseSeconds: z.number().int().positive().optional() }).nullable(),
  /** The last change this job made to Vault's config. */
  lastChange: z.object({ mode: z.enum(['rotate', 'sync', 'recover']), at: z.string() }).nullable(),
  /** When sync found Authentik's secret changed by someone else (newest last, pruned to the churn window). */
  externalChanges: z.array(z.string()),
  /** Identifies the write that produced this version (to tell whether an unanswered write landed). */
  writeId: z.string(),
});
export type RotationRecord = z.infer<typeof recordSchema>;

export interface RecordSnapshot {
  /** KV version the data came from; 0 when there is no record yet. */
  version: number;
  data: RotationRecord | undefined;
  /** When Vault wrote that version (its created_time, Vault's clock, ms since the epoch). */
  writtenAt?: number;
}

type Lock = NonNullable<RotationRecord['lock']>;

const kvRead = z.object({
  data: z.unknown(),
  metadata: z.looseObject({ version: z.number().int(), created_time: z.string() }),
});
const kvWritten = z.looseObject({ version: z.number().int() });
const health = z.looseObject({ server_time_utc: z.number().int() });

/** Another run holds the record (or just wrote it): this run must not change anything. */
export class RecordBusyError extends Error {
  override readonly name = 'RecordBusyError';
  constructor(
    message: string,
    /** The other run's claim, when it is a live claim that stopped this run. */
    readonly lock?: Lock,
  ) {
    super(message);
  }
}

/** A check-and-set failed because this run's own unanswered write had landed; the store now stands on it. */
export class OwnWriteLandedError extends Error {
  override readonly name = 'OwnWriteLandedError';
  constructor(path: string) {
    super(`an earlier write of this run to the rotation record ${path} landed although its answer was lost`);
  }
}

export class RotationRecordStore {
  readonly runId = randomUUID();
  private readonly dataPath: string;
  /** The last version this run wrote, to release its claim at the end whatever happened. */
  private last: { version: number; data: RotationRecord } | undefined;
  /** The claim's lease length, set when this run claims the record. */
  private leaseSeconds = 0;
  /**
   * Until when (performance.now(), this process's monotonic clock) the claim surely holds in
   * Vault's eyes: the lease counted from the moment the write that set it was sent, which is
   * before Vault stamped its created_time. Only a duration is measured here, so no clock skew.
   */
  private heldUntil = 0;
  /** A write of this run that got no answer: if it turns up in the record, it landed then. */
  private unanswered: { writeId: string; sentAt: number } | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  /** Writes of this run one after the other: a renewal and a step's write must not race for one version. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly vault: VaultClient,
    kvMount: string,
    readonly path: string,
    private readonly signal?: AbortSignal,
    private readonly log?: Logger,
  ) {
    this.dataPath = `${kvMount}/data/${path}`;
  }

  /** Where the record lives, as an operator would type it (`bao kv get -mount=secret <path>`). */
  get displayPath(): string {
    return this.dataPath;
  }

  async read(): Promise<RecordSnapshot> {
    let res;
    try {
      res = await this.vault.read(this.dataPath, kvRead, this.signal ? { signal: this.signal } : {});
    } catch (err) {
      if (err instanceof VaultError && err.status === 404) return { version: 0, data: undefined };
      throw err;
    }
    if (res.data === null) {
      // The latest version was deleted: check-and-set still counts from its number, but the
      // number is only in the metadata, which this job's policy does not read.
      throw new JobFailure(`the rotation record ${this.dataPath} has a deleted latest version; undelete it, or delete its metadata to start afresh`);
    }
    const parsed = recordSchema.safeParse(res.data);
    if (!parsed.success) {
      throw new JobFailure(`the rotation record ${this.dataPath} does not have the expected shape`, {
        issues: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
      });
    }
    for (const s of [parsed.data.current?.secret, parsed.data.previous?.secret, parsed.data.pending?.secret, parsed.data.pending?.authentikBefore?.secret]) {
      registerSecret(s);
    }
    return { version: res.metadata.version, data: parsed.data, writtenAt: Date.parse(res.metadata.created_time) };
  }

  /**
   * A write by the run that holds the claim, on top of the last version it wrote (its lease
   * renewals make new versions meanwhile). A body without this run's lock ends the claim.
   */
  writeHeld(data: Omit<RotationRecord, 'writeId'>): Promise<{ version: number; data: RotationRecord }> {
    return this.serially(async () => {
      if (!this.last) throw new RecordBusyError('this run does not hold the rotation record');
      const written = await this.casWrite(this.last.version, data);
      if (written.data.lock?.holder !== this.runId) this.stopRenewing();
      return written;
    });
  }

  /**
   * Claims the record for this run (check-and-set on the version read) with a lease of
   * `leaseSeconds`, renewed every third of it while the run lives. Refuses while another run's
   * lease has not lapsed. Lapsed means, on Vault's clock alone, that the version carrying the
   * claim is older than its lease: its holder has not renewed for a whole lease, and (see
   * assertHeld) it is inside no call that could still change Authentik or Vault. It may be
   * killed, or frozen and about to find out that it lost the claim; either way it changes
   * nothing more. The check-and-set makes sure the version is still the one judged.
   */
  async acquire(snap: RecordSnapshot, initial: Omit<RotationRecord, 'writeId' | 'lock'>, leaseSeconds: number, now = new Date()): Promise<{ version: number; data: RotationRecord }> {
    const lock = snap.data?.lock;
    if (lock && lock.holder !== this.runId) {
      const vaultNow = await this.vaultTime();
      const lease = (lock.leaseSeconds ?? leaseSeconds) * 1000;
      if (snap.writtenAt === undefined || Number.isNaN(snap.writtenAt) || vaultNow - snap.writtenAt <= lease) {
        throw new RecordBusyError(`another run (${lock.holder}) holds the rotation record since ${lock.acquiredAt}, its lease renewed until ${lock.expiresAt}`, lock);
      }
    }
    const base = snap.data ?? { ...initial, lock: null, writeId: '' };
    const { writeId: _previousWrite, ...rest } = base;
    const claim: Lock = { holder: this.runId, acquiredAt: now.toISOString(), expiresAt: new Date(now.getTime() + leaseSeconds * 1000).toISOString(), leaseSeconds };
    this.leaseSeconds = leaseSeconds;
    const claimed = await this.serially(() => this.casWrite(snap.version, { ...rest, lock: claim }));
    this.stopRenewing();
    this.renewTimer = setInterval(() => void this.renewNow(), (leaseSeconds * 1000) / 3);
    // A renewal is no reason to keep the process alive.
    this.renewTimer.unref();
    return claimed;
  }

  /** Vault's time now (sys/health, answered by the active node this job talks to; whole seconds, rounded down, so a lease looks lapsed no sooner). */
  private async vaultTime(): Promise<number> {
    const res = await this.vault.call('sys/health', { ...(this.signal ? { signal: this.signal } : {}), acceptStatus: [429, 472, 473, 501, 503] });
    const parsed = health.safeParse(res.body);
    if (!parsed.success) throw new JobFailure("Vault's sys/health did not say its time (server_time_utc): cannot tell whether another run's claim lapsed");
    return parsed.data.server_time_utc * 1000;
  }

  /**
   * Ends this run's claim if it still holds one (a failed run's pending change stays for the
   * next). For cleanup: not bound to the run's signal, which SIGTERM has already aborted.
   */
  async releaseIfHeld(): Promise<boolean> {
    this.stopRenewing();
    return this.serially(async () => {
      const signal = AbortSignal.timeout(10_000);
      for (let attempt = 0; ; attempt++) {
        const last = this.last;
        if (!last || last.data.lock?.holder !== this.runId) return false;
        const { writeId: _w, ...rest } = last.data;
        try {
          await this.casWrite(last.version, { ...rest, lock: null }, signal);
          return true;
        } catch (err) {
          // Our lost write landed: release on top of it instead.
          if (!(err instanceof OwnWriteLandedError) || attempt > 0) throw err;
        }
      }
    });
  }

  /**
   * Throws unless more of this run's lease is left than the call that follows can take
   * (`callSeconds`, its deadline plus one request timeout): then the lease cannot lapse, and no
   * other run take over, while this run is inside that call. Called before every change outside
   * the record. Renewals keep the lease long; when they fail (Vault unreachable), this is what
   * stops the run before a change that another run might undo.
   */
  assertHeld(callSeconds: number, now = performance.now()): void {
    const lock = this.last?.data.lock;
    if (lock?.holder !== this.runId) throw new RecordBusyError('this run does not hold the rotation record');
    const left = this.heldUntil - now;
    if (left <= callSeconds * 1000) {
      throw new RecordBusyError(
        `this run could not renew its claim on the rotation record: ${Math.max(0, Math.floor(left / 1000))}s of its lease left, less than the ${callSeconds}s the next call may take; stopping before another change`,
      );
    }
  }

  /** One renewal of the lease now (the timer calls it every third of the lease). */
  async renewNow(): Promise<void> {
    await this.serially(async () => {
      const last = this.last;
      if (!last || last.data.lock?.holder !== this.runId || this.signal?.aborted) return this.stopRenewing();
      const { writeId: _w, ...rest } = last.data;
      const expiresAt = new Date(Date.now() + this.leaseSeconds * 1000).toISOString();
      try {
        await this.casWrite(last.version, { ...rest, lock: { ...last.data.lock, expiresAt } });
      } catch (err) {
        // The version moved on by our own lost write (a renewal whose answer never came): the
        // claim is still ours, renewed when that write was sent; the next tick builds on it.
        if (err instanceof OwnWriteLandedError) return;
        // Lost to another run (it saw the lease lapse): this run must change nothing more, and
        // assertHeld says so. Anything else is tried again at the next tick.
        if (err instanceof RecordBusyError) this.stopRenewing();
        this.log?.warn({ record: this.dataPath, err }, 'could not renew the claim on the rotation record');
      }
    }).catch(() => undefined);
  }

  private stopRenewing(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * One check-and-set write. A write that got no answer is looked up again: if our writeId is
   * there it landed. So is one whose version moved on: that may be our own earlier write whose
   * answer was lost (and whose look-up failed too), not another run.
   */
  private async casWrite(version: number, data: Omit<RotationRecord, 'writeId'>, signalOverride?: AbortSignal): Promise<{ version: number; data: RotationRecord }> {
    const full: RotationRecord = { ...data, writeId: randomUUID() };
    const signal = signalOverride ?? this.signal;
    const sentAt = performance.now();
    try {
      const res = await this.vault.write(this.dataPath, { options: { cas: version }, data: full }, kvWritten, signal ? { signal } : {});
      if (!res) throw new JobFailure(`writing the rotation record ${this.dataPath} returned no version`);
      return this.landed(res.version, full, sentAt);
    } catch (err) {
      if (isCasMismatch(err)) {
        const now = await this.read().catch(() => undefined);
        const ours = this.unanswered;
        if (now?.data && ours && now.data.writeId === ours.writeId) {
          // Our unanswered write landed and is the latest version: adopt it. `data` was made
          // from the version before it, so it is not written over it; the caller decides.
          this.landed(now.version, now.data, ours.sentAt);
          throw new OwnWriteLandedError(this.dataPath);
        }
        throw new RecordBusyError(`the rotation record ${this.dataPath} changed since this run read it (version ${version}): another run is at work`, now?.data?.lock ?? undefined);
      }
      if (err instanceof VaultUnreachableError) {
        this.unanswered = { writeId: full.writeId, sentAt };
        const now = await this.read().catch(() => undefined);
        if (now?.data?.writeId === full.writeId) return this.landed(now.version, full, sentAt);
      }
      throw err;
    }
  }

  private landed(version: number, data: RotationRecord, sentAt: number): { version: number; data: RotationRecord } {
    this.last = { version, data };
    this.unanswered = undefined;
    if (data.lock?.holder === this.runId) this.heldUntil = sentAt + this.leaseSeconds * 1000;
    return this.last;
  }
}

function isCasMismatch(err: unknown): boolean {
  // KV v2 answers 400 "check-and-set parameter did not match the current version".
  return err instanceof VaultError && err.status === 400 && err.errors.some((e) => e.includes('check-and-set'));
}

/** Keeps the external-change timestamps inside the window, adding `at` when given. */
export function pruneChanges(times: string[], windowSeconds: number, now: Date, at?: Date): string[] {
  const from = now.getTime() - windowSeconds * 1000;
  return [...times, ...(at ? [at.toISOString()] : [])].filter((t) => Date.parse(t) >= from);
}

/** A secret as the record keeps it. */
export function held(fingerprintKey: string, secret: string, fp: (key: string, s: string) => string, at: Date): HeldSecret {
  return { secret, fingerprint: fp(fingerprintKey, secret), setAt: at.toISOString() };
}

type RecordBody = Omit<RotationRecord, 'writeId'>;

/** Vault's config now holds `secret`: it becomes current, the pending change and the claim end. */
export function markCurrent(data: RotationRecord, next: HeldSecret, mode: 'rotate' | 'sync' | 'recover', at: Date): RecordBody {
  const { writeId: _w, ...rest } = data;
  const same = data.current?.fingerprint === next.fingerprint;
  return {
    ...rest,
    current: same ? data.current : next,
    previous: same ? data.previous : (data.current ?? data.pending?.authentikBefore ?? null),
    pending: null,
    lock: null,
    lastChange: same ? data.lastChange : { mode, at: at.toISOString() },
  };
}

/** Nothing changed after all: the pending change and the claim end, the rest stays. */
export function withoutPending(data: RotationRecord): RecordBody {
  const { writeId: _w, ...rest } = data;
  return { ...rest, pending: null, lock: null };
}
