// The local stack itself: Kubernetes auth with TokenRequest tokens, the policies under
// policies/ enforced as written, and the Raft cluster surviving the loss of its leader.
import { describe, expect, it } from 'vitest';
import { baoApi } from '../stack/http.ts';
import {
  killLeader,
  kubectl,
  leaderIndex,
  mintServiceAccountToken,
  readStack,
  startNode,
  waitForHealthyCluster,
} from '../stack/stack.ts';

const stack = readStack();
const addr = stack.openbao.addr;
const root = stack.openbao.rootToken;

async function login(job: string, opts: { serviceAccount?: string; audience?: string } = {}) {
  const jwt = await mintServiceAccountToken('vaultkeeper', opts.serviceAccount ?? `vaultkeeper-${job}`, { audience: opts.audience ?? 'vault' });
  return baoApi(addr, 'POST', 'auth/kubernetes/login', { body: { role: `vaultkeeper-${job}`, jwt } });
}

async function loginToken(job: string): Promise<string> {
  const res = await login(job);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.auth.client_token as string;
}

const status = async (token: string, method: string, path: string, body?: unknown) =>
  (await baoApi(addr, method, path, { token, body })).status;

describe('kubernetes auth', () => {
  it('lets a job service account log in with an audience "vault" TokenRequest token', async () => {
    const res = await login('kms-probe');
    expect(res.status).toBe(200);
    expect(res.body.auth.policies).toContain('vaultkeeper-kms-probe');
    expect(res.body.auth.lease_duration).toBe(900);
  });

  it('rejects a token for another audience, and another job service account', async () => {
    expect((await login('kms-probe', { audience: 'https://kubernetes.default.svc.cluster.local' })).status).toBe(403);
    expect((await login('kms-probe', { serviceAccount: 'vaultkeeper-secret-sweep' })).status).toBe(403);
  });

  it('has an admin kubeconfig', async () => {
    expect((await kubectl(['auth', 'can-i', '*', '*'])).trim()).toBe('yes');
  });
});

describe('policies', () => {
  it('kms-probe reads seal and raft state, nothing in secret/', async () => {
    const t = await loginToken('kms-probe');
    expect(await status(t, 'GET', 'sys/seal-status')).toBe(200);
    expect(await status(t, 'GET', 'sys/storage/raft/autopilot/state')).toBe(200);
    expect(await status(t, 'GET', 'sys/storage/raft/configuration')).toBe(200);
    expect(await status(t, 'GET', 'secret/data/foo')).toBe(403);
  });

  it('raft-snapshot can take a snapshot and nothing else', async () => {
    const t = await loginToken('raft-snapshot');
    expect(await status(t, 'GET', 'sys/storage/raft/snapshot')).toBe(200);
    expect(await status(t, 'GET', 'secret/data/foo')).toBe(403);
    expect(await status(t, 'POST', 'sys/storage/raft/snapshot', {})).toBe(403); // restore
  });

  it('secret-sweep reads everything in secret/ and writes only its backups', async () => {
    expect(await status(root, 'POST', 'secret/data/smoke/app', { data: { password: 'hunter2' } })).toBe(200);
    const t = await loginToken('secret-sweep');
    expect(await status(t, 'GET', 'secret/data/smoke/app')).toBe(200);
    expect(await status(t, 'LIST', 'secret/metadata/smoke')).toBe(200);
    expect(await status(t, 'POST', 'secret/data/smoke/app', { data: { password: 'x' } })).toBe(403);
    expect(await status(t, 'POST', 'secret/data/vaultkeeper/secret-sweep/backup/smoke', { data: { a: 1 } })).toBe(200);
    expect(await status(t, 'DELETE', 'secret/metadata/smoke/app')).toBe(403);
  });

  it('emergency-token mints a launcher that can only mint a short admin token', async () => {
    const t = await loginToken('emergency-token');
    const launcher = await baoApi(addr, 'POST', 'auth/token/create/breakglass-launcher', { token: t, body: {} });
    expect(launcher.status).toBe(200);
    expect(launcher.body.auth.policies).toEqual(['breakglass-launcher']);
    expect(launcher.body.auth.orphan).toBe(true);
    expect(launcher.body.auth.renewable).toBe(false);
    expect(launcher.body.auth.lease_duration).toBe(744 * 3600);
    const launcherToken = launcher.body.auth.client_token as string;
    expect(await status(launcherToken, 'GET', 'secret/data/foo')).toBe(403);
    const admin = await baoApi(addr, 'POST', 'auth/token/create/breakglass-admin', { token: launcherToken, body: {} });
    expect(admin.status).toBe(200);
    expect(admin.body.auth.lease_duration).toBe(3600);
    expect(await status(admin.body.auth.client_token, 'LIST', 'sys/policies/acl')).toBe(200);
    // The job cannot use the admin role itself, and revokes the old launcher by accessor.
    expect(await status(t, 'POST', 'auth/token/create/breakglass-admin', {})).toBe(403);
    expect(await status(t, 'POST', 'auth/token/lookup-accessor', { accessor: launcher.body.auth.accessor })).toBe(200);
    expect(await status(t, 'POST', 'auth/token/revoke-accessor', { accessor: launcher.body.auth.accessor })).toBe(204);
    expect(await status(launcherToken, 'GET', 'auth/token/lookup-self')).toBe(403);
  });

  it.skipIf(!stack.authentik)('oidc-rotation manages the OIDC auth config and nothing else', async () => {
    const t = await loginToken('oidc-rotation');
    const config = await baoApi(addr, 'GET', 'auth/oidc/config', { token: t });
    expect(config.status).toBe(200);
    expect(await status(t, 'GET', 'auth/oidc/role/default')).toBe(200);
    expect(await status(t, 'LIST', 'auth/oidc/role')).toBe(403);
    // Not written here (that would disturb the OIDC login other tests use): ask for the capabilities.
    const caps = await baoApi(addr, 'POST', 'sys/capabilities-self', { token: t, body: { paths: ['auth/oidc/config'] } });
    expect(caps.body['auth/oidc/config'].sort()).toEqual(['read', 'update']);
    const authUrl = await status(t, 'POST', 'auth/oidc/oidc/auth_url', { role: 'default', redirect_uri: 'http://127.0.0.1:8250/oidc/callback' });
    expect(authUrl).toBe(200);
    expect(await status(t, 'GET', 'secret/data/vaultkeeper/authentik/api-token')).toBe(200);
    expect(await status(t, 'POST', 'secret/data/vaultkeeper/authentik/api-token', { data: { x: 1 } })).toBe(403);
    expect(await status(t, 'POST', 'secret/data/vaultkeeper/oidc-rotation/state', { data: { rotatedAt: 'now' } })).toBe(200);
    expect(await status(t, 'POST', 'sys/auth/oidc/tune', { default_lease_ttl: '1h' })).toBe(403);
  });

  it('every job can look up and revoke its own token', async () => {
    for (const job of Object.keys(stack.kube.serviceAccounts)) {
      const t = await loginToken(job);
      expect(await status(t, 'GET', 'auth/token/lookup-self'), job).toBe(200);
      expect(await status(t, 'POST', 'auth/token/revoke-self', {}), job).toBe(204);
      expect(await status(t, 'GET', 'auth/token/lookup-self'), job).toBe(403);
    }
  });
});

describe('raft cluster', () => {
  it('standbys answer sys/health with 429, and serve a Raft snapshot themselves (OpenBao 2.6: no 307)', async () => {
    const leader = await leaderIndex();
    const standby = stack.openbao.nodes.find((n) => n.index !== leader)!;
    expect((await baoApi(standby.addr, 'GET', 'sys/health')).status).toBe(429);
    expect((await baoApi(standby.addr, 'GET', 'sys/health?standbyok=true')).status).toBe(200);
    const snap = await baoApi(standby.addr, 'GET', 'sys/storage/raft/snapshot', { token: root, redirect: 'manual' });
    expect(snap.status).toBe(200);
    expect(snap.headers.get('content-type')).toBe('application/gzip');
  });

  it('elects a new leader when the active node is killed, and takes it back', async () => {
    const before = await leaderIndex();
    const killed = await killLeader();
    expect(killed).toBe(before);
    const after = await leaderIndex(60_000);
    expect(after).not.toBe(killed);
    await startNode(killed);
    await waitForHealthyCluster(3);
  });
});
