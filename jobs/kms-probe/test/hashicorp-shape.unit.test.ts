// HashiCorp Vault's answers to the three unauthenticated per-node calls, fed to the probe's own
// probeNode. The stack tests prove the OpenBao 2.6 shape (no seal-backend-status, health codes
// 200/429/501/503 only); these are the HashiCorp Vault 1.2x shapes, from its API docs (read, not
// copied: BSL): developer.hashicorp.com/vault/api-docs/system/health (codes 472/473/474/530),
// .../system/seal-status, .../system/seal-backend-status (1.15+; a top-level body with
// `healthy`, `unhealthy_since` and `backends`, not wrapped in `data`; see hashicorp/vault
// http/sys_seal.go). See docs/vault-compatibility.md.
import { describe, expect, it } from 'vitest';
import type { VaultClient } from '@vaultkeeper/vault';
import { probeNode } from '../src/checks/vault-nodes.ts';

type Answer = { status: number; body: unknown };

/** A client whose call() answers each path with a fixed response: only the probe's parsing is under test. */
function clientAnswering(answers: Record<string, Answer>): VaultClient {
  return {
    call: async (path: string) => {
      const a = answers[path];
      if (!a) throw new Error(`unexpected path ${path}`);
      return { ...a, node: 'http://127.0.0.1:8200', headers: {} };
    },
  } as unknown as VaultClient;
}

const SEAL_STATUS: Answer = {
  status: 200,
  body: {
    type: 'awskms', initialized: true, sealed: false, t: 1, n: 1, progress: 0, nonce: '', version: '1.20.0',
    build_date: '2025-06-01T00:00:00Z', migration: false, cluster_name: 'vault-cluster-1', cluster_id: 'c-1',
    recovery_seal: true, storage_type: 'raft', removed_from_cluster: false,
  },
};
const health = (status: number): Answer => ({
  status,
  body: { initialized: true, sealed: false, standby: status !== 200, performance_standby: status === 473, version: '1.20.0', cluster_name: 'vault-cluster-1', cluster_id: 'c-1', echo_duration_ms: 1, clock_skew_ms: 0, removed_from_cluster: status === 530 },
});
const TARGET = { name: 'vault-0', address: 'http://127.0.0.1:8200' };
const input = (answers: Record<string, Answer>) => ({ client: clientAnswering(answers), authenticated: false, callTimeoutSeconds: 5 });

describe('kms-probe against HashiCorp Vault shapes', () => {
  it('reads a top-level seal-backend-status body that reports an unhealthy backend', async () => {
    const r = await probeNode(
      input({
        'sys/seal-status': SEAL_STATUS,
        'sys/health': health(200),
        'sys/seal-backend-status': {
          status: 200,
          body: { healthy: false, unhealthy_since: '2025-06-01T08:00:00Z', backends: [{ name: 'awskms', healthy: false, unhealthy_since: '2025-06-01T08:00:00Z' }] },
        },
      }),
      TARGET,
      new AbortController().signal,
    );
    expect(r.sealBackendHealthy).toBe(false);
    expect(r.sealBackend).toBe('unhealthy since 2025-06-01T08:00:00Z');
    expect(r).toMatchObject({ sealType: 'awskms', recoverySeal: true, clusterId: 'c-1', version: '1.20.0', role: 'active' });
  });

  it.each([
    [473, 'perf standby'],
    [474, 'standby, cannot reach active'],
    [530, 'removed from cluster'],
    [472, 'dr secondary'],
  ])('names the Vault-only sys/health status %i', async (status, role) => {
    const r = await probeNode(
      input({ 'sys/seal-status': SEAL_STATUS, 'sys/health': health(status), 'sys/seal-backend-status': { status: 200, body: { healthy: true, backends: [] } } }),
      TARGET,
      new AbortController().signal,
    );
    expect(r.role).toBe(role);
    expect(r.healthStatus).toBe(status);
    expect(r.sealBackend).toBe('healthy');
  });
});
