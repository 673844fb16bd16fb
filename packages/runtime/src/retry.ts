import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError } from './errors.ts';

export interface RetryOptions {
  /** Give up when the next attempt would start after this many ms from the first. */
  deadlineMs: number;
  /** First backoff; doubles each attempt up to maxDelayMs; full jitter. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Hard cap on attempts, whatever the deadline says. */
  maxAttempts?: number;
  signal?: AbortSignal;
  /** Decides whether an error is worth another attempt. */
  retryable: (err: unknown) => boolean;
  /** Called before each wait, for logging. */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
}

/**
 * The one retry helper: exponential backoff with full jitter under an overall deadline.
 * Full jitter (sleep = random(0, min(cap, base * 2^n))) keeps a fleet of CronJobs that all
 * failed at the same moment from retrying in lockstep against a recovering Vault.
 */
export async function withRetry<T>(fn: (attempt: number, remainingMs: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const started = Date.now();
  const base = opts.baseDelayMs ?? 200;
  const cap = opts.maxDelayMs ?? 5_000;
  const maxAttempts = opts.maxAttempts ?? Number.POSITIVE_INFINITY;
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw new AbortedError(String(opts.signal.reason ?? 'aborted'));
    try {
      return await fn(attempt, Math.max(0, opts.deadlineMs - (Date.now() - started)));
    } catch (err) {
      if (opts.signal?.aborted || attempt >= maxAttempts || !opts.retryable(err)) throw err;
      const delayMs = Math.round(Math.random() * Math.min(cap, base * 2 ** (attempt - 1)));
      if (Date.now() - started + delayMs >= opts.deadlineMs) throw err;
      opts.onRetry?.({ attempt, delayMs, error: err });
      try {
        await sleep(delayMs, undefined, opts.signal ? { signal: opts.signal } : undefined);
      } catch {
        throw new AbortedError(String(opts.signal?.reason ?? 'aborted'));
      }
    }
  }
}
