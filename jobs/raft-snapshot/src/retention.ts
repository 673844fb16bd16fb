/**
 * Which snapshots to keep: the last N, plus the newest of each of the last D days, W ISO weeks and
 * M months that have a snapshot (grandfather-father-son, counted the way restic's `forget` counts:
 * a period without a snapshot does not use up a slot). All periods are UTC, so that the answer does
 * not depend on the pod's time zone.
 */

export interface RetentionPolicy {
  keepLast: number;
  daily: number;
  weekly: number;
  monthly: number;
}

export interface RetentionCandidate {
  key: string;
  takenAt: Date;
}

export type KeepReason = 'newest' | 'last' | 'daily' | 'weekly' | 'monthly';

export interface RetentionPlan {
  keep: Array<{ key: string; takenAt: Date; reasons: KeepReason[] }>;
  prune: Array<{ key: string; takenAt: Date }>;
}

const day = (d: Date) => d.toISOString().slice(0, 10);
const month = (d: Date) => d.toISOString().slice(0, 7);

/** ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday), e.g. 2025-W48. */
export function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const dow = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dow); // the Thursday of this week decides its year
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/**
 * Plans retention over verified snapshots of one cluster written by this job. The newest one is
 * always kept, whatever the policy says (a policy of all zeros must not empty the bucket).
 */
export function planRetention(snapshots: RetentionCandidate[], policy: RetentionPolicy): RetentionPlan {
  const sorted = [...snapshots].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || (a.key < b.key ? 1 : -1));
  const reasons = new Map<string, KeepReason[]>();
  const mark = (key: string, why: KeepReason) => reasons.set(key, [...(reasons.get(key) ?? []), why]);

  if (sorted[0]) mark(sorted[0].key, 'newest');
  sorted.slice(0, policy.keepLast).forEach((s) => mark(s.key, 'last'));
  const buckets: Array<[KeepReason, number, (d: Date) => string]> = [
    ['daily', policy.daily, day],
    ['weekly', policy.weekly, isoWeek],
    ['monthly', policy.monthly, month],
  ];
  for (const [why, count, bucketOf] of buckets) {
    let last: string | undefined;
    let kept = 0;
    for (const s of sorted) {
      if (kept >= count) break;
      const bucket = bucketOf(s.takenAt);
      if (bucket === last) continue;
      last = bucket;
      kept++;
      mark(s.key, why);
    }
  }
  return {
    keep: sorted.filter((s) => reasons.has(s.key)).map((s) => ({ key: s.key, takenAt: s.takenAt, reasons: reasons.get(s.key)! })),
    prune: sorted.filter((s) => !reasons.has(s.key)).map((s) => ({ key: s.key, takenAt: s.takenAt })),
  };
}
