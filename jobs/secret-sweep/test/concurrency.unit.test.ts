import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { createLimiter } from '../src/concurrency.ts';

it('never runs more than the limit at once, even when newcomers arrive as slots free up', async () => {
  const limit = createLimiter(3);
  let active = 0;
  let peak = 0;
  const task = async (ms: number) => {
    active++;
    peak = Math.max(peak, active);
    await sleep(ms);
    active--;
  };
  const all: Promise<void>[] = [];
  for (let i = 0; i < 20; i++) {
    all.push(limit(() => task(i % 3)));
    if (i % 5 === 0) await sleep(1);
  }
  await Promise.all(all);
  expect(peak).toBe(3);
});
