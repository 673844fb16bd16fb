import { describe, expect, it } from 'vitest';
import { isoWeek, planRetention } from '../src/retention.ts';

const at = (iso: string) => ({ key: `k-${iso}`, takenAt: new Date(iso) });

/** One snapshot a day at 02:00 UTC for `days` days ending on `last`. */
function nightly(last: string, days: number) {
  const end = new Date(last).getTime();
  return Array.from({ length: days }, (_, i) => at(new Date(end - i * 86_400_000).toISOString()));
}

describe('planRetention', () => {
  it('keeps the last N and the newest of each day, week and month', () => {
    const snaps = nightly('2025-11-27T02:00:00.000Z', 120);
    const plan = planRetention(snaps, { keepLast: 3, daily: 7, weekly: 4, monthly: 3 });
    const kept = plan.keep.map((k) => k.key.slice(2, 12));
    // 7 dailies (the last 3 among them), Sundays of the 4 ISO weeks not already covered, month ends.
    expect(kept).toEqual([
      '2025-11-27', '2025-11-26', '2025-11-25', '2025-11-24', '2025-11-23', '2025-11-22', '2025-11-21',
      '2025-11-16', '2025-11-09',
      '2025-10-31', '2025-09-30',
    ]);
    expect(plan.keep[0]!.reasons).toEqual(['newest', 'last', 'daily', 'weekly', 'monthly']);
    expect(plan.keep.length + plan.prune.length).toBe(120);
  });

  it('counts only periods that have a snapshot', () => {
    const snaps = [at('2025-01-01T00:00:00Z'), at('2025-03-01T00:00:00Z'), at('2025-06-01T00:00:00Z')];
    const plan = planRetention(snaps, { keepLast: 0, daily: 0, weekly: 0, monthly: 3 });
    expect(plan.prune).toEqual([]);
  });

  it('always keeps the newest, even with an all-zero policy', () => {
    const plan = planRetention(nightly('2025-11-27T02:00:00Z', 5), { keepLast: 0, daily: 0, weekly: 0, monthly: 0 });
    expect(plan.keep.map((k) => k.reasons)).toEqual([['newest']]);
    expect(plan.prune).toHaveLength(4);
  });

  it('keeps the newest of several snapshots in one day', () => {
    const snaps = [at('2025-11-27T01:00:00Z'), at('2025-11-27T13:00:00Z'), at('2025-11-27T07:00:00Z')];
    const plan = planRetention(snaps, { keepLast: 0, daily: 1, weekly: 0, monthly: 0 });
    expect(plan.keep.map((k) => k.key)).toEqual(['k-2025-11-27T13:00:00Z']);
  });

  it('handles no snapshots', () => {
    expect(planRetention([], { keepLast: 1, daily: 1, weekly: 1, monthly: 1 })).toEqual({ keep: [], prune: [] });
  });
});

describe('isoWeek', () => {
  it.each([
    ['2025-11-27', '2025-W48'],
    ['2024-12-30', '2025-W01'],
    ['2021-01-03', '2020-W53'],
    ['2026-01-01', '2026-W01'],
  ])('%s is %s', (d, w) => expect(isoWeek(new Date(`${d}T12:00:00Z`))).toBe(w));
});
