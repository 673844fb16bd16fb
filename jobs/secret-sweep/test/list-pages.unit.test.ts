import { createLogger } from '@vaultkeeper/runtime';
import { describe, expect, it } from 'vitest';
import { KubeError } from '../src/kube.ts';
import { listPages, type FetchPage } from '../src/list-secrets.ts';

const log = createLogger({ job: 'secret-sweep', level: 'silent' });

function pager(items: number[], expireAt: Set<string> = new Set()): { fetch: FetchPage<number>; calls: Array<[number, string | undefined]> } {
  const calls: Array<[number, string | undefined]> = [];
  const fetch: FetchPage<number> = async (limit, cont) => {
    calls.push([limit, cont]);
    if (cont && expireAt.has(cont)) {
      expireAt.delete(cont);
      throw new KubeError('list secrets', 410, 'Expired', 'The provided continue parameter is too old');
    }
    const start = cont ? Number(cont) : 0;
    const next = start + limit;
    return { items: items.slice(start, next), metadata: next < items.length ? { _continue: String(next) } : {} };
  };
  return { fetch, calls };
}

describe('listPages', () => {
  it('pages with limit and continue until the token is empty', async () => {
    const { fetch, calls } = pager([1, 2, 3, 4, 5]);
    const pages = [];
    for await (const p of listPages([fetch], { operation: 'list', pageSize: 2, log })) pages.push(p);
    expect(pages).toEqual([
      { items: [1, 2], restarted: false },
      { items: [3, 4], restarted: false },
      { items: [5], restarted: false },
    ]);
    expect(calls).toEqual([[2, undefined], [2, '2'], [2, '4']]);
  });

  it('on 410 Gone starts the whole list over and says so', async () => {
    const a = pager([1, 2, 3]);
    const b = pager([10, 11, 12], new Set(['2']));
    const pages = [];
    for await (const p of listPages([a.fetch, b.fetch], { operation: 'list', pageSize: 2, log })) pages.push(p);
    expect(pages).toEqual([
      { items: [1, 2], restarted: false },
      { items: [3], restarted: false },
      { items: [10, 11], restarted: false },
      // 410 on b's second page: everything again, from the first list.
      { items: [1, 2], restarted: true },
      { items: [3], restarted: false },
      { items: [10, 11], restarted: false },
      { items: [12], restarted: false },
    ]);
  });

  it('gives up after too many restarts, and passes other errors through', async () => {
    const always: FetchPage<number> = async (_l, cont) => {
      if (cont) throw new KubeError('list', 410, 'Expired', undefined);
      return { items: [1], metadata: { _continue: 'x' } };
    };
    await expect(async () => {
      for await (const _ of listPages([always], { operation: 'list secrets', pageSize: 1, log, maxRestarts: 2 })) void _;
    }).rejects.toThrow(/expired 3 times/);
    const forbidden: FetchPage<number> = async () => {
      throw new KubeError('list', 403, 'Forbidden', undefined);
    };
    await expect(async () => {
      for await (const _ of listPages([forbidden], { operation: 'list', pageSize: 1, log })) void _;
    }).rejects.toMatchObject({ status: 403 });
  });
});
