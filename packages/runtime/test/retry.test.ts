import { describe, expect, it } from 'vitest';
import { AbortedError, withRetry } from '../src/index.ts';

describe('withRetry', () => {
  it('retries what is retryable until it succeeds', async () => {
    let calls = 0;
    const result = await withRetry(
      async () => {
        if (++calls < 3) throw new Error('transient');
        return 'ok';
      },
      { deadlineMs: 5_000, baseDelayMs: 1, retryable: () => true },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
  });

  it('does not retry what is not retryable', async () => {
    let calls = 0;
    await expect(withRetry(async () => { calls++; throw new Error('permanent'); }, { deadlineMs: 5_000, retryable: () => false })).rejects.toThrow('permanent');
    expect(calls).toBe(1);
  });

  it('stops at the deadline with the last error', async () => {
    let calls = 0;
    await expect(
      withRetry(async () => { calls++; throw new Error('down'); }, { deadlineMs: 50, baseDelayMs: 10, maxDelayMs: 20, retryable: () => true }),
    ).rejects.toThrow('down');
    expect(calls).toBeGreaterThan(1);
  });

  it('stops waiting when aborted', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    await expect(
      withRetry(async () => { throw new Error('down'); }, { deadlineMs: 60_000, baseDelayMs: 10_000, retryable: () => true, signal: controller.signal }),
    ).rejects.toBeInstanceOf(AbortedError);
  });
});
