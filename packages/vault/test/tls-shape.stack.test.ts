// The client on a cluster shaped as vault-helm runs it with TLS: VAULT_ADDR is a Service in front
// of the nodes, each node advertises its own address (a pod IP) and the certificate covers the
// Service names and 127.0.0.1 but not those addresses (HashiCorp's TLS-on-Kubernetes guide).
// Logins go through that Service, i.e. through any node.
import { afterEach, describe, expect, it } from 'vitest';
import { VaultClient, VaultTlsError, VaultUnreachableError } from '../src/index.ts';
import { readFileSync } from 'node:fs';
import { leaderIndex, mintServiceAccountToken, readStack } from '../../../test/stack/stack.ts';
import { rootVaultClient, stackVaultClient } from '../../../test/support/vault-client.ts';

const stack = readStack();
const tls = stack.openbao.tls;
const clients: VaultClient[] = [];
const track = (c: VaultClient) => (clients.push(c), c);
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

describe.skipIf(!tls)('TLS with per-node addresses the certificate does not cover', () => {
  it('finds the active node through the Service and talks to it by its own address', async () => {
    const c = track(rootVaultClient({ address: stack.openbao.serviceAddr }));
    const active = await c.findActiveNode();
    const leader = await leaderIndex();
    expect(active).toBe(stack.openbao.nodes[leader]!.addr);
    // The pinned node really answers: a write then a read of it, both on the active node.
    await c.write('secret/data/vaultkeeper-tests/tls-shape', { data: { n: '1' } });
    await expect(c.read('secret/data/vaultkeeper-tests/tls-shape')).resolves.toMatchObject({ data: { n: '1' } });
    expect(c.currentNode).toBe(stack.openbao.nodes[leader]!.addr);
  });

  it('asks a standby by its own address (node-by-node probes)', async () => {
    const c = track(stackVaultClient({ address: stack.openbao.serviceAddr }));
    for (const n of stack.openbao.nodes) {
      const res = await c.call('sys/health', { node: n.addr, maxAttempts: 1, acceptStatus: [429, 472, 473, 501, 503] });
      expect([200, 429]).toContain(res.status);
    }
  });

  it('works through the active-only Service as it is', async () => {
    const c = track(rootVaultClient({ address: stack.openbao.activeAddr }));
    await c.findActiveNode();
    await expect(c.readRaw('sys/storage/raft/autopilot/state')).resolves.toBeDefined();
  });

  it('fails at once, naming vault.caCert, when the CA is not trusted', async () => {
    const c = track(stackVaultClient({ address: stack.openbao.serviceAddr, caCert: undefined, callDeadlineSeconds: 20 }));
    const started = Date.now();
    const err = await c.call('sys/health').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultTlsError);
    expect(err).toBeInstanceOf(VaultUnreachableError);
    expect(String((err as Error).message)).toMatch(/vault\.caCert|VAULT_CACERT/);
    // Not retried until the call deadline: a certificate does not fix itself.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('verifies every node against vault.tlsServerName when set, and says so when it does not match', async () => {
    const ok = track(rootVaultClient({ address: stack.openbao.serviceAddr, tlsServerName: tls!.serverName }));
    await ok.findActiveNode();
    await expect(ok.readRaw('sys/leader')).resolves.toBeDefined();
    const bad = track(stackVaultClient({ address: stack.openbao.serviceAddr, tlsServerName: 'vault.elsewhere.example' }));
    const err = await bad.call('sys/health').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultTlsError);
    expect(String((err as Error).message)).toContain('vault.elsewhere.example');
  });
});

describe('Kubernetes login through the Service right after the auth mount was configured', () => {
  it('logs in even when the answering standby still refuses it (OpenBao 2.6 does for ~25 s)', async () => {
    const mount = `kubernetes-login-${Date.now().toString(36)}`;
    const root = track(rootVaultClient());
    await root.write(`sys/auth/${mount}`, { type: 'kubernetes' });
    try {
      const reviewer = stack.kube.reviewer.token;
      await root.write(`auth/${mount}/config`, {
        kubernetes_host: stack.kube.server,
        kubernetes_ca_cert: readFileSync(stack.kube.caFile, 'utf8'),
        token_reviewer_jwt: reviewer,
        disable_local_ca_jwt: true,
      });
      await root.write(`auth/${mount}/role/probe`, {
        bound_service_account_names: ['vaultkeeper-kms-probe'],
        bound_service_account_namespaces: [stack.kube.namespace],
        audience: 'vault',
        token_policies: ['default'],
        token_ttl: 60,
      });
      const jwt = await mintServiceAccountToken(stack.kube.namespace, 'vaultkeeper-kms-probe', { audience: 'vault' });
      // Round robin over three nodes: six logins reach every standby twice.
      for (let i = 0; i < 6; i++) {
        const c = track(stackVaultClient({ address: stack.openbao.serviceAddr }));
        await expect(c.loginKubernetes('probe', jwt, mount), `login ${i + 1}`).resolves.toMatchObject({ policies: ['default'] });
        await c.revokeOwnToken();
      }
    } finally {
      await root.delete(`sys/auth/${mount}`);
    }
  });
});
