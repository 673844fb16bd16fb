// The proof that a stored snapshot is a backup: restore it into a fresh single-node OpenBao (the
// real bao binary, same awskms seal as the stack, so the sealed manifest and the keyring decrypt)
// with POST sys/storage/raft/snapshot-force, and read back a secret written before the snapshot.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi, baoOk, waitFor } from '../../../test/stack/http.ts';
import { realBaoBinary } from '../../../test/stack/layout.ts';
import { serverEnv } from '../../../test/stack/proc.ts';
import { readStack } from '../../../test/stack/stack.ts';
import { TestBucket, applyJobPolicy } from './stack-fixture.ts';

const stack = readStack();
const t = new TestBucket('restore');
const mount = `rs-restore-${process.pid}`;
const marker = randomBytes(16).toString('hex');
const API = 'http://127.0.0.1:18290';
let dir = '';
let server: ChildProcess | undefined;

/** The stack nodes' seal stanza, verbatim: the fresh node must use the same KMS key. */
function sealStanza(): string {
  const hcl = readFileSync(stack.openbao.nodes[0]!.configFile, 'utf8');
  const m = /seal\s+"awskms"\s*\{[^}]*\}/s.exec(hcl);
  if (!m) throw new Error('no awskms seal stanza in the stack config');
  return m[0];
}

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
  if (server?.pid) {
    try {
      process.kill(-server.pid, 'SIGKILL');
    } catch {
      server.kill('SIGKILL');
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  await baoApi(stack.openbao.addr, 'DELETE', `sys/mounts/${mount}`, { token: stack.openbao.rootToken }).catch(() => undefined);
  await t.clean();
});

describe('restore', () => {
  it('a stored snapshot restores into a fresh OpenBao and holds the data written before it', async () => {
    const run = await t.run();
    expect(run.code, run.all).toBe(0);
    const key = String(run.summary!.key);
    const snapshot = await t.get(key);

    dir = mkdtempSync(join(tmpdir(), 'rs-restore-'));
    writeFileSync(
      join(dir, 'config.hcl'),
      `api_addr = "${API}"
cluster_addr = "https://127.0.0.1:18289"
storage "raft" {
  path    = "${join(dir, 'raft')}"
  node_id = "restore-1"
}
listener "tcp" {
  address         = "127.0.0.1:18290"
  cluster_address = "127.0.0.1:18289"
  tls_disable     = true
}
${sealStanza()}
`,
    );
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'raft'));
    const log = openSync(join(dir, 'bao.log'), 'a');
    server = spawn(realBaoBinary(), ['server', `-config=${join(dir, 'config.hcl')}`], { detached: true, stdio: ['ignore', log, log], env: serverEnv() });
    await waitFor('the fresh node to answer', 30_000, async () => (await baoApi(API, 'GET', 'sys/health')).status === 501);
    const init = await baoOk<{ root_token: string }>(API, 'PUT', 'sys/init', { body: { recovery_shares: 1, recovery_threshold: 1 } });
    await waitFor('the fresh node to become active', 60_000, async () => (await baoApi(API, 'GET', 'sys/health')).status === 200);
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
