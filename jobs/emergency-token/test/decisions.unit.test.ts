import { describe, expect, it } from 'vitest';
import { rotationDue } from '../src/rotation.ts';
import type { StateRecord } from '../src/state-record.ts';
import { judgeExpiry } from '../src/watchdog.ts';

const DAY = 86_400_000;
const now = Date.parse('2026-06-15T12:00:00Z');
const settings = { minAgeSeconds: 27 * 86_400, warnSeconds: 3 * 86_400, force: false };

function record(ageDays: number, lifetimeDays = 31): StateRecord {
  return {
    kind: 'launcher',
    accessor: 'acc',
    createdAt: new Date(now - ageDays * DAY).toISOString(),
    expiresAt: new Date(now + (lifetimeDays - ageDays) * DAY).toISOString(),
    fingerprint: 'sha256:x',
  };
}
const alive = (r: StateRecord) => ({ alive: true as const, createdAt: r.createdAt!, expiresAt: r.expiresAt! });

describe('rotationDue', () => {
  it('rotates when there is nothing yet', () => {
    expect(rotationDue({ record: {}, status: undefined, sinkHolds: undefined, kind: 'launcher' }, settings, now)).toMatchObject({ due: true, reason: expect.stringMatching(/no break-glass credential/) });
  });

  it('skips a young, alive credential that the sink holds', () => {
    const r = record(2);
    const d = rotationDue({ record: r, status: alive(r), sinkHolds: true, kind: 'launcher' }, settings, now);
    expect(d.due).toBe(false);
    expect(d.reason).toMatch(/younger than the minimum age of 27 days/);
  });

  it('--force rotates a young one', () => {
    const r = record(0);
    expect(rotationDue({ record: r, status: alive(r), sinkHolds: true, kind: 'launcher' }, { ...settings, force: true }, now).due).toBe(true);
  });

  it('rotates at the minimum age', () => {
    const r = record(27);
    expect(rotationDue({ record: r, status: alive(r), sinkHolds: true, kind: 'launcher' }, settings, now)).toMatchObject({ due: true, reason: expect.stringMatching(/27 days old/) });
  });

  it('rotates a young credential that Vault no longer knows (revoked by hand)', () => {
    expect(rotationDue({ record: record(1), status: { alive: false }, sinkHolds: undefined, kind: 'launcher' }, settings, now)).toMatchObject({ due: true, reason: expect.stringMatching(/no longer valid/) });
  });

  it('rotates when the sink lost the credential (a failed undo, someone overwrote it)', () => {
    const r = record(1);
    expect(rotationDue({ record: r, status: alive(r), sinkHolds: false, kind: 'launcher' }, settings, now)).toMatchObject({ due: true, reason: expect.stringMatching(/sink does not hold/) });
  });

  it('rotates a young credential whose record names another sink location (the upgrade to per-cluster keys), saying where from and to', () => {
    const r = record(1);
    const sinkMoved = { from: 's3://b/emergency-token/vault/breakglass.json', to: 's3://b/emergency-token/0b1c/breakglass.json' };
    expect(rotationDue({ record: r, status: alive(r), sinkHolds: false, sinkMoved, kind: 'launcher' }, settings, now)).toMatchObject({
      due: true,
      reason: expect.stringMatching(/recorded at s3:\/\/b\/emergency-token\/vault\/breakglass.json and the sink is now s3:\/\/b\/emergency-token\/0b1c/),
    });
  });

  it('rotates a young credential about to expire (a role capping the TTL below the minimum age)', () => {
    const r = record(1, 3);
    expect(rotationDue({ record: r, status: alive(r), sinkHolds: true, kind: 'launcher' }, settings, now)).toMatchObject({ due: true, reason: expect.stringMatching(/warning window/) });
  });

  it('rotates when the configured kind changed', () => {
    const r = record(1);
    expect(rotationDue({ record: r, status: alive(r), sinkHolds: true, kind: 'approle-secret-id' }, settings, now)).toMatchObject({ due: true, reason: expect.stringMatching(/kind changed/) });
  });
});

describe('judgeExpiry (the watchdog)', () => {
  it('is fine with a fresh credential', () => {
    const r = record(1);
    expect(judgeExpiry(r, alive(r), 3 * 86_400, now)).toMatchObject({ ok: true, expiresInDays: 30 });
  });

  it('fails within the warning window', () => {
    const r = record(29);
    const v = judgeExpiry(r, alive(r), 3 * 86_400, now);
    expect(v.ok).toBe(false);
    expect(v.problem).toMatch(/expires in 2 days/);
  });

  it('fails when there is none, or Vault no longer knows it', () => {
    expect(judgeExpiry({}, undefined, 3 * 86_400, now).ok).toBe(false);
    expect(judgeExpiry(record(1), { alive: false }, 3 * 86_400, now).problem).toMatch(/no longer valid/);
  });

  it("prefers Vault's expiry over the record's", () => {
    const r = record(1);
    const v = judgeExpiry(r, { alive: true, createdAt: r.createdAt!, expiresAt: new Date(now + DAY).toISOString() }, 3 * 86_400, now);
    expect(v.ok).toBe(false);
  });
});
