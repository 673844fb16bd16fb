// The proof that a stored snapshot is a backup: restore it into a fresh single-node OpenBao (the
// real bao binary, same awskms seal as the stack, so the sealed manifest and the keyring decrypt)
// with POST sys/storage/raft/snapshot-force, and read back a secret written before the snapshot.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi, baoOk, waitFor } from '../../../test/stack/http.ts';
import { readStack } from '../../../test/stack/stack.ts';
import { TestBucket, applyJobPolicy, startFreshBao, type FreshBao } from './stack-fixture.ts';

const stack = readStack();
const t = new TestBucket('restore');
const mount = `rs-restore-${process.pid}`;
const marker = randomBytes(16).toString('hex');
let fresh: FreshBao | undefined;

beforeAll(async () => {
  await applyJobPolicy();
  const { addr, rootToken: token } = stack.openbao;
  await baoOk(addr, 'POST', `sys/mounts/${mount}`, { token, body: { type: 'kv', options: { version: '2' } } });
  await waitFor('the KV mount', 30_000, async () => {
    await baoOk(addr, 'POST', `${mount}/data/marker`, { token, body: { data: { marker } } });
    return true;
  });
}, 60_000);

afterAll(async () => {
  await fresh?.stop();
  await baoApi(stack.openbao.addr, 'DELETE', `sys/mounts/${mount}`, { token: stack.openbao.rootToken }).catch(() => undefined);
  await t.clean();
});

describe('restore', () => {
  it('a stored snapshot restores into a fresh OpenBao and holds the data written before it', async () => {
    const run = await t.run();
    expect(run.code, run.all).toBe(0);
    const key = String(run.summary!.key);
    const snapshot = await t.get(key);

    fresh = await startFreshBao({ apiPort: 18290, clusterPort: 18289, nodeId: 'restore-1' });
    const API = fresh.api;
    const init = { root_token: fresh.rootToken };
    // Before: the fresh node knows nothing of the marker.
    expect((await baoApi(API, 'GET', `${mount}/data/marker`, { token: init.root_token })).status).not.toBe(200);

    const res = await fetch(`${API}/v1/sys/storage/raft/snapshot-force`, {
      method: 'POST',
      headers: { 'X-Vault-Token': init.root_token },
      body: snapshot,
      signal: AbortSignal.timeout(60_000),
    });
    expect(res.status, await res.text()).toBe(204);

    // After: the cluster's own data, readable with the cluster's root token.
    const value = await waitFor('the restored data', 60_000, async () => {
      const r = await baoApi(API, 'GET', `${mount}/data/marker`, { token: stack.openbao.rootToken });
      return r.status === 200 ? (r.body.data.data.marker as string) : undefined;
    });
    expect(value).toBe(marker);
    // And the fresh node's own root token is gone with the state it replaced.
    expect((await baoApi(API, 'GET', 'auth/token/lookup-self', { token: init.root_token })).status).toBe(403);

    // The restored node is a single-node cluster: the job works against it too (token auth: the
    // restored state holds the stack's tokens, not its Kubernetes auth config's reachability).
    const again = await t.run([], { VAULT_ADDR: API, VAULT_TOKEN: stack.openbao.rootToken, SNAPSHOT_CLUSTER: 'restored' }, { auth: 'none' });
    expect(again.code, again.all).toBe(0);
    expect(again.summary!.node).toBe(API);
    expect(Number(again.summary!.raftIndex)).toBeGreaterThan(0);
  }, 180_000);
});
