import { JobFailure, describeError, type Logger } from '@vaultkeeper/runtime';
import { ProofFailed, type BreakGlassCredential, type CredentialIssuer, type CredentialKind, type CredentialStatus } from './credential.ts';
import { fingerprint, sameFingerprint } from './fingerprint.ts';
import type { CredentialSink, Delivery } from './sinks/sink.ts';
import type { PendingCredential, StateRecord, StateStore, StoredState } from './state-record.ts';

export interface RotationSettings {
  minAgeSeconds: number;
  warnSeconds: number;
  force: boolean;
  dryRun: boolean;
  /** The address written into the credential for the operator. */
  vaultAddress: string;
  rotatedBy: string;
  runId: string;
  purpose: string;
}

export interface RotationDeps {
  store: StateStore;
  /** The kind new credentials are made of. */
  issuer: CredentialIssuer;
  /** Every kind, to look up and revoke what earlier runs made (the kind may have changed since). */
  issuers: Record<CredentialKind, CredentialIssuer>;
  sink: CredentialSink;
  log: Logger;
  signal: AbortSignal;
  settings: RotationSettings;
}

export interface RotationResult {
  action: 'rotated' | 'skipped' | 'would-rotate' | 'would-skip';
  reason: string;
  /** What the previous runs left and this one finished or undid. */
  recovered?: string;
  state: StoredState;
  /** What Vault says about the current credential once the run is done. */
  status: CredentialStatus | undefined;
  previousAccessor?: string;
  previousRevoked?: 'revoked' | 'gone';
}

export interface Decision {
  due: boolean;
  reason: string;
}

/** Whether a new credential is due. Pure: the inputs are what the record, Vault and the sink say. */
export function rotationDue(
  input: {
    record: StateRecord;
    status: CredentialStatus | undefined;
    /** Does the sink hold the recorded credential? undefined when not checked. */
    sinkHolds: boolean | undefined;
    /** Where the sink delivers now, when the record names another place (the key or the bucket changed). */
    sinkMoved?: { from: string; to: string } | undefined;
    kind: CredentialKind;
  },
  s: Pick<RotationSettings, 'minAgeSeconds' | 'warnSeconds' | 'force'>,
  now = Date.now(),
): Decision {
  const { record, status } = input;
  if (s.force) return { due: true, reason: 'forced (--force)' };
  if (!record.accessor || !record.createdAt || !record.expiresAt) return { due: true, reason: 'there is no break-glass credential yet' };
  if (status && !status.alive) return { due: true, reason: 'the recorded credential is no longer valid in Vault' };
  if ((record.kind ?? 'launcher') !== input.kind) return { due: true, reason: `the configured kind changed from ${record.kind ?? 'launcher'} to ${input.kind}` };
  if (input.sinkMoved) return { due: true, reason: `the credential is recorded at ${input.sinkMoved.from} and the sink is now ${input.sinkMoved.to}: a new one is delivered there` };
  if (input.sinkHolds === false) return { due: true, reason: 'the sink does not hold the recorded credential' };
  const expiresAt = status?.alive ? status.expiresAt : record.expiresAt;
  if (Date.parse(expiresAt) - now <= s.warnSeconds * 1000) return { due: true, reason: 'the credential expires within the warning window' };
  const ageSeconds = (now - Date.parse(record.createdAt)) / 1000;
  if (ageSeconds >= s.minAgeSeconds) return { due: true, reason: `the credential is ${days(ageSeconds)} days old (minimum age ${days(s.minAgeSeconds)} days)` };
  return { due: false, reason: `the credential is ${days(ageSeconds)} days old, younger than the minimum age of ${days(s.minAgeSeconds)} days` };
}

const days = (seconds: number) => Math.round((seconds / 86_400) * 100) / 100;

/** A signal for steps that must finish even after SIGTERM: undoing and recording are what keep the next run safe. */
const uncancellable = (ms = 15_000) => AbortSignal.timeout(ms);

/**
 * One rotation, in the order that keeps a working credential in the sink at every moment:
 * finish or undo what a crashed run left; skip when the credential is young; note the intent;
 * create; note the new accessor; deliver and read back; prove; revoke the previous one; record.
 */
export async function rotate(d: RotationDeps): Promise<RotationResult> {
  const { store, log, settings } = d;
  let state = await store.read(d.signal);

  if (settings.dryRun) return planOnly(d, state);

  let recovered: string | undefined;
  if (state.record.pending) ({ state, recovered } = await recoverPending(d, state));
  state = await retryUnrevoked(d, state);

  const record = state.record;
  const kind = record.kind ?? 'launcher';
  const status = record.accessor ? await d.issuers[kind].status(record.accessor, d.signal) : undefined;
  const sinkHolds = record.fingerprint && status?.alive ? await sinkHoldsFingerprint(d.sink, record.fingerprint, d.signal) : undefined;
  const decision = rotationDue({ record, status, sinkHolds, sinkMoved: sinkMoved(record, d.sink), kind: d.issuer.kind }, settings);
  if (!decision.due) {
    log.info({ accessor: record.accessor, createdAt: record.createdAt, expiresAt: record.expiresAt }, `no rotation: ${decision.reason}`);
    return { action: 'skipped', reason: decision.reason, state, status, ...(recovered ? { recovered } : {}) };
  }
  log.info({ reason: decision.reason, kind: d.issuer.kind, sink: d.sink.name }, 'rotating the break-glass credential');

  // Before anything exists: a sink that cannot take the credential must not cost a live one.
  await d.sink.preflight(d.signal);

  const startedAt = new Date().toISOString();
  const base: StateRecord = { ...record, pending: undefined };
  const intent: PendingCredential = { runId: settings.runId, startedAt, kind: d.issuer.kind };
  state = await store.write({ ...base, pending: intent }, state.version);

  let credential: BreakGlassCredential;
  try {
    const issued = await d.issuer.issue({ purpose: settings.purpose, rotatedAt: startedAt, rotatedBy: settings.rotatedBy, runId: settings.runId }, d.signal);
    credential = { ...issued, fingerprint: fingerprint(issued.secret), vaultAddress: settings.vaultAddress, purpose: settings.purpose, rotatedBy: settings.rotatedBy, runId: settings.runId };
  } catch (err) {
    // Vault said no (4xx): nothing was created, so the intent can go. Anything else (a connection
    // cut after the request left) may have created one we cannot name: the intent stays, and the
    // next run reports it.
    if (isDefiniteRefusal(err)) await store.write(base, state.version).catch(() => undefined);
    throw new JobFailure('could not create the new break-glass credential; the current one is unchanged', { err: describeError(err), step: 'create' });
  }

  try {
    state = await store.write({ ...base, pending: pendingOf(intent, credential) }, state.version);
  } catch (err) {
    // We hold a credential that no record names: end it now rather than leave it unaccounted for.
    await d.issuer.revoke(credential.accessor, uncancellable()).catch((e: unknown) =>
      log.error({ err: e, accessor: credential.accessor }, 'could not revoke the unrecorded new credential; revoke it by hand'),
    );
    throw err;
  }
  log.info({ accessor: credential.accessor, fingerprint: credential.fingerprint, kind: credential.kind }, 'new credential created and recorded as pending');

  let delivery: Delivery | undefined;
  try {
    // Vault's own times, not our clock, go into the sink and the record.
    const fresh = await d.issuer.status(credential.accessor, d.signal);
    if (!fresh.alive) throw new ProofFailed('the new credential is not known to Vault by its accessor', 'status');
    credential = { ...credential, createdAt: fresh.createdAt, expiresAt: fresh.expiresAt };

    delivery = await d.sink.deliver(credential, d.signal);
    log.info({ sink: delivery.location, accessor: credential.accessor }, 'delivered');
    const back = await d.sink.readBack(delivery, d.signal);
    if (!sameFingerprint(fingerprint(back.secret), credential.fingerprint) || back.accessor !== credential.accessor) {
      throw new ProofFailed('what the sink gives back is not what was delivered (fingerprints differ)', 'read-back');
    }
    log.info({ sink: delivery.location, fingerprint: credential.fingerprint }, 'read back from the sink: fingerprints match');
    await d.issuer.prove(credential, d.signal);
    log.info({ accessor: credential.accessor }, 'the new credential works');
  } catch (err) {
    await rollBack(d, state, base, credential);
    throw new JobFailure('delivery or proof of the new break-glass credential failed: it was revoked and the previous one kept', {
      err: describeError(err),
      step: err instanceof ProofFailed ? `proof:${err.check}` : 'delivery',
      revokedAccessor: credential.accessor,
      keptAccessor: record.accessor,
    });
  }

  // From here on the new credential is the one operators get; SIGTERM no longer stops the run.
  let previousRevoked: 'revoked' | 'gone' | undefined;
  let revokeError: unknown;
  const unrevoked = [...(base.unrevoked ?? [])];
  if (record.accessor && record.accessor !== credential.accessor) {
    try {
      previousRevoked = await d.issuers[kind].revoke(record.accessor, uncancellable());
      log.info({ accessor: record.accessor, result: previousRevoked }, 'previous credential revoked (with any admin token minted from it)');
    } catch (err) {
      revokeError = err;
      unrevoked.push({ kind, accessor: record.accessor, since: new Date().toISOString() });
    }
  }
  state = await store.write(
    {
      ...base,
      kind: credential.kind,
      accessor: credential.accessor,
      createdAt: credential.createdAt,
      expiresAt: credential.expiresAt,
      fingerprint: credential.fingerprint,
      sink: delivery.location,
      rotatedAt: new Date().toISOString(),
      rotatedBy: settings.rotatedBy,
      runId: settings.runId,
      unrevoked: unrevoked.length ? unrevoked : undefined,
    },
    state.version,
  );
  log.info({ accessor: credential.accessor, expiresAt: credential.expiresAt, sink: delivery.location, state: store.location }, 'rotation recorded');
  if (revokeError) {
    throw new JobFailure(`rotated, but the previous credential with accessor ${record.accessor} could not be revoked; the next run retries, or revoke it by hand`, {
      err: describeError(revokeError),
      unrevokedAccessor: record.accessor,
      accessor: credential.accessor,
    });
  }
  return {
    action: 'rotated',
    reason: decision.reason,
    state,
    status: { alive: true, createdAt: credential.createdAt, expiresAt: credential.expiresAt },
    ...(recovered ? { recovered } : {}),
    ...(record.accessor ? { previousAccessor: record.accessor } : {}),
    ...(previousRevoked ? { previousRevoked } : {}),
  };
}

function pendingOf(intent: PendingCredential, c: BreakGlassCredential): PendingCredential {
  return { ...intent, accessor: c.accessor, createdAt: c.createdAt, expiresAt: c.expiresAt, fingerprint: c.fingerprint };
}

/**
 * Undo a failed delivery: take every copy of the new credential back out of the sink, revoke it,
 * forget it. Always asked of the sink, even when `deliver` threw: its write may have landed with
 * the answer lost (or SIGTERM cut the wait, or the SDK repeated it).
 */
async function rollBack(d: RotationDeps, state: StoredState, base: StateRecord, credential: BreakGlassCredential): Promise<void> {
  const { log } = d;
  try {
    const taken = await d.sink.undo(credential, uncancellable());
    if (taken) log.warn({ sink: d.sink.name, accessor: credential.accessor, copies: taken }, 'took the failed delivery back out of the sink');
  } catch (err) {
    // The record keeps the pending credential's fingerprint; the next run sees that the sink no
    // longer holds the recorded credential and rotates.
    log.error({ err, sink: d.sink.name, accessor: credential.accessor }, 'could not take the failed delivery back: the sink may hold a revoked credential until the next run');
  }
  try {
    const r = await d.issuer.revoke(credential.accessor, uncancellable());
    log.warn({ accessor: credential.accessor, result: r }, 'new credential revoked after the failure');
  } catch (err) {
    throw new JobFailure(`delivery failed and the new credential with accessor ${credential.accessor} could not be revoked; the next run retries, or revoke it by hand`, {
      err: describeError(err),
      unrevokedAccessor: credential.accessor,
    });
  }
  await d.store.write(base, state.version);
}

/**
 * A run that stopped between creating a credential and recording the outcome leaves `pending`.
 * If the sink holds that credential and it is alive, operators may already rely on it: finish the
 * rotation (revoke the old one, record it). Otherwise nobody has it: revoke it and forget it.
 */
async function recoverPending(d: RotationDeps, state: StoredState): Promise<{ state: StoredState; recovered: string }> {
  const { log } = d;
  const p = state.record.pending!;
  const base: StateRecord = { ...state.record, pending: undefined };
  if (!p.accessor || !p.fingerprint) {
    log.warn(
      { pendingRunId: p.runId, startedAt: p.startedAt },
      'a previous run stopped while creating a credential and never learnt its accessor; if one was made, nobody holds it and it expires with its TTL',
    );
    return { state: await d.store.write(base, state.version), recovered: 'unrecorded-create' };
  }
  const issuer = d.issuers[p.kind];
  const status = await issuer.status(p.accessor, d.signal);
  const held = await d.sink.current(d.signal);
  const holdsPending = !!held && held.credential.accessor === p.accessor && sameFingerprint(held.credential.fingerprint, p.fingerprint);

  if (holdsPending && status.alive) {
    log.warn({ accessor: p.accessor, pendingRunId: p.runId }, 'a previous run delivered a credential but did not finish: finishing its rotation');
    const unrevoked = [...(base.unrevoked ?? [])];
    const oldKind = base.kind ?? 'launcher';
    if (base.accessor && base.accessor !== p.accessor) {
      try {
        await d.issuers[oldKind].revoke(base.accessor, uncancellable());
      } catch (err) {
        log.error({ err, accessor: base.accessor }, 'could not revoke the credential the unfinished run replaced; kept for the next run');
        unrevoked.push({ kind: oldKind, accessor: base.accessor, since: new Date().toISOString() });
      }
    }
    const next = await d.store.write(
      {
        ...base,
        kind: p.kind,
        accessor: p.accessor,
        createdAt: status.createdAt,
        expiresAt: status.expiresAt,
        fingerprint: p.fingerprint,
        sink: held.delivery.location,
        rotatedAt: new Date().toISOString(),
        rotatedBy: d.settings.rotatedBy,
        runId: p.runId,
        unrevoked: unrevoked.length ? unrevoked : undefined,
      },
      state.version,
    );
    return { state: next, recovered: `finished-rotation:${p.accessor}` };
  }

  // Delivered (perhaps unanswered, perhaps below a retry's copy), then died or was revoked:
  // every copy goes, so the one before is current again.
  const taken = await d.sink.undo({ accessor: p.accessor }, uncancellable());
  if (taken) log.warn({ sink: d.sink.name, accessor: p.accessor, copies: taken }, 'took the unfinished run\'s delivery back out of the sink');
  if (status.alive) {
    const r = await issuer.revoke(p.accessor, uncancellable());
    log.warn({ accessor: p.accessor, pendingRunId: p.runId, result: r }, 'revoked the credential an unfinished run created but never delivered');
  }
  return { state: await d.store.write(base, state.version), recovered: `revoked-pending:${p.accessor}` };
}

/** Replaced credentials whose revocation failed earlier: try again, keep what still fails. */
async function retryUnrevoked(d: RotationDeps, state: StoredState): Promise<StoredState> {
  const list = state.record.unrevoked ?? [];
  if (!list.length) return state;
  const left: NonNullable<StateRecord['unrevoked']> = [];
  for (const u of list) {
    try {
      const r = await d.issuers[u.kind].revoke(u.accessor, d.signal);
      d.log.info({ accessor: u.accessor, result: r }, 'revoked a replaced credential left over by an earlier run');
    } catch (err) {
      d.log.error({ err, accessor: u.accessor, since: u.since }, 'still cannot revoke a replaced credential');
      left.push(u);
    }
  }
  if (left.length === list.length) return state;
  return d.store.write({ ...state.record, unrevoked: left.length ? left : undefined }, state.version);
}

async function sinkHoldsFingerprint(sink: CredentialSink, expected: string, signal: AbortSignal): Promise<boolean> {
  const held = await sink.current(signal);
  return !!held && sameFingerprint(held.credential.fingerprint, expected) && sameFingerprint(fingerprint(held.credential.secret), expected);
}

/** --dry-run: read everything, change nothing, say what a real run would do. */
async function planOnly(d: RotationDeps, state: StoredState): Promise<RotationResult> {
  const record = state.record;
  const kind = record.kind ?? 'launcher';
  const status = record.accessor ? await d.issuers[kind].status(record.accessor, d.signal) : undefined;
  const sinkHolds = record.fingerprint && status?.alive ? await sinkHoldsFingerprint(d.sink, record.fingerprint, d.signal) : undefined;
  const decision = rotationDue({ record, status, sinkHolds, sinkMoved: sinkMoved(record, d.sink), kind: d.issuer.kind }, d.settings);
  const notes: string[] = [];
  if (record.pending) notes.push(`would first finish or undo the unfinished rotation of run ${record.pending.runId}`);
  if (record.unrevoked?.length) notes.push(`would retry revoking ${record.unrevoked.map((u) => u.accessor).join(', ')}`);
  d.log.info({ due: decision.due, notes }, `dry run: ${decision.due ? 'would rotate' : 'would not rotate'}: ${decision.reason}`);
  return { action: decision.due ? 'would-rotate' : 'would-skip', reason: decision.reason, state, status };
}

/**
 * The record names another place than the sink delivers to now: an upgrade moved the default S3
 * key to the cluster's own folder, or the operator changed the key or the bucket.
 */
function sinkMoved(record: StateRecord, sink: CredentialSink): { from: string; to: string } | undefined {
  if (!record.sink || record.sink === sink.location || record.sink.startsWith(`${sink.location}?`)) return undefined;
  return { from: record.sink.replace(/\?.*$/, ''), to: sink.location };
}

function isDefiniteRefusal(err: unknown): boolean {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 500;
}
