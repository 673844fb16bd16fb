// The verdicts, from answers shaped like the real ones (captured from OpenBao 2.6.2 and moto's KMS).
import type { KeyMetadata } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { judgeKeyMetadata } from '../src/checks/kms-key.ts';
import { judgeNodes, type NodeReport } from '../src/checks/vault-nodes.ts';
import { judgeRaft, type AutopilotState } from '../src/checks/raft.ts';
import { judgeExpiry } from '../src/checks/emergency-token.ts';
import { buildTopology, inferApiMapping } from '../src/vault-topology.ts';
import { formatDuration } from '../src/format-duration.ts';

const ARN = 'arn:aws:kms:us-east-1:123456789012:key/256065c9-f94a-4b81-8e8d-d75ea8f25d85';
const key = (over: Partial<KeyMetadata> = {}): KeyMetadata => ({
  KeyId: '256065c9-f94a-4b81-8e8d-d75ea8f25d85',
  Arn: ARN,
  KeyState: 'Enabled',
  Enabled: true,
  KeyUsage: 'ENCRYPT_DECRYPT',
  KeySpec: 'SYMMETRIC_DEFAULT',
  Origin: 'AWS_KMS',
  ...over,
});

describe('judgeKeyMetadata', () => {
  it('passes an enabled symmetric key in the configured region', () => {
    expect(judgeKeyMetadata(key(), { expectedKeyArn: ARN, region: 'us-east-1' })).toMatchObject({ status: 'ok', summary: 'enabled, symmetric, us-east-1' });
  });

  it('names the state of an unusable key, with the deletion date', () => {
    expect(judgeKeyMetadata(key({ KeyState: 'Disabled', Enabled: false }), { expectedKeyArn: undefined, region: undefined })).toMatchObject({
      status: 'fail',
      class: 'key-unusable',
      summary: 'key unusable: disabled',
    });
    const pending = judgeKeyMetadata(key({ KeyState: 'PendingDeletion', DeletionDate: new Date('2026-12-04T00:00:00Z') }), { expectedKeyArn: undefined, region: undefined });
    expect(pending).toMatchObject({ status: 'fail', class: 'key-unusable' });
    expect(pending.summary).toBe('key unusable: pending deletion, deleted on 2026-12-04T00:00:00.000Z unless cancelled');
    expect(judgeKeyMetadata(key({ KeyState: 'PendingImport', Origin: 'EXTERNAL' }), { expectedKeyArn: undefined, region: undefined }).summary).toMatch(
      /^key unusable: pending import/,
    );
  });

  it('refuses a key Vault cannot seal with, a re-pointed alias and a wrong region', () => {
    expect(judgeKeyMetadata(key({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }), { expectedKeyArn: undefined, region: undefined }).summary).toBe(
      'key unusable: not a symmetric encrypt/decrypt key (RSA_2048, SIGN_VERIFY)',
    );
    expect(judgeKeyMetadata(key(), { expectedKeyArn: ARN.replace('256', '999'), region: undefined })).toMatchObject({ status: 'fail', class: 'other' });
    expect(judgeKeyMetadata(key(), { expectedKeyArn: undefined, region: 'eu-west-1' }).summary).toBe('other: key is in us-east-1, configured region is eu-west-1');
  });

  it('warns before imported key material expires', () => {
    const now = Date.parse('2026-11-01T00:00:00Z');
    const r = judgeKeyMetadata(key({ Origin: 'EXTERNAL', ValidTo: new Date('2026-11-10T00:00:00Z') }), { expectedKeyArn: undefined, region: undefined }, now);
    expect(r.status).toBe('warn');
  });
});

const node = (name: string, over: Partial<NodeReport> = {}): NodeReport => ({
  name,
  address: `http://127.0.0.1:1820${name.slice(-1)}`,
  healthStatus: 429,
  role: 'standby',
  initialized: true,
  sealed: false,
  sealType: 'awskms',
  recoverySeal: true,
  version: '2.6.2',
  clusterId: 'bfa6521b',
  clusterName: 'vault-cluster-4b621210',
  sealBackend: 'not offered',
  ...over,
});
const topo = { silentMembers: [], refused: [], source: 'discovered' as const, notes: [] };

describe('judgeNodes', () => {
  it('passes one active and two standbys of one cluster', () => {
    const r = judgeNodes({ reports: [node('bao-1', { healthStatus: 200, role: 'active' }), node('bao-2'), node('bao-3')], topology: topo, expectedSealType: 'awskms' });
    expect(r).toMatchObject({ status: 'ok', summary: '3 unsealed (1 active, 2 standby), awskms, vault-cluster-4b621210, 2.6.2' });
    expect(r.notes).toContain('bao-1 http://127.0.0.1:18201: active unsealed seal awskms+recovery 2.6.2 seal backend not offered');
  });

  it('reports a sealed node as sealed and an unreachable one as unreachable, unreachable first', () => {
    const r = judgeNodes({
      reports: [node('bao-1', { healthStatus: 200 }), node('bao-2', { sealed: true, healthStatus: 503, role: 'sealed' }), { name: 'bao-3', address: 'http://127.0.0.1:18203', error: { class: 'unreachable', reason: 'ECONNREFUSED' } }],
      topology: topo,
      expectedSealType: 'awskms',
    });
    expect(r).toMatchObject({ status: 'fail', class: 'unreachable' });
    expect(r.summary).toBe('unreachable: bao-3 (ECONNREFUSED); sealed: bao-2');
    const sealedOnly = judgeNodes({ reports: [node('bao-1', { healthStatus: 200 }), node('bao-2', { sealed: true, healthStatus: 503 })], topology: topo, expectedSealType: 'awskms' });
    expect(sealedOnly).toMatchObject({ class: 'sealed', summary: 'sealed: bao-2' });
  });

  it('sees no active node, two active nodes, a split cluster, a wrong seal and a silent Raft member', () => {
    expect(judgeNodes({ reports: [node('bao-1'), node('bao-2')], topology: topo, expectedSealType: 'awskms' }).summary).toBe('degraded: no active node');
    expect(
      judgeNodes({ reports: [node('bao-1', { healthStatus: 200 }), node('bao-2', { healthStatus: 200, clusterId: 'other' })], topology: topo, expectedSealType: 'awskms' }).summary,
    ).toBe('degraded: 2 active nodes: bao-1, bao-2, nodes disagree on the cluster: bao-1 in bfa6521b vs bao-2 in other');
    expect(judgeNodes({ reports: [node('bao-1', { healthStatus: 200, sealType: 'shamir' })], topology: topo, expectedSealType: 'awskms' }).summary).toBe(
      'other: bao-1 seal type shamir, expected awskms',
    );
    const silent = judgeNodes({
      reports: [node('bao-1', { healthStatus: 200 })],
      topology: { ...topo, silentMembers: [{ nodeId: 'bao-3', clusterAddress: '127.0.0.1:18213', voter: true, leader: false }] },
      expectedSealType: 'awskms',
    });
    expect(silent.summary).toBe('unreachable: bao-3 (Raft member 127.0.0.1:18213, absent from sys/ha-status)');
  });

  it('does not call a partial view (vault.address only, login failed) a cluster without an active node', () => {
    const r = judgeNodes({ reports: [node('127.0.0.1:18201')], topology: { ...topo, source: 'vault address' }, expectedSealType: 'awskms' });
    expect(r.status).toBe('warn');
    expect(r.notes).toContain('partial view: only vault.address and vault.fallbackAddresses were asked');
  });

  it('fails on an unhealthy seal backend (Vault 1.15+) and warns on differing versions', () => {
    const r = judgeNodes({
      reports: [node('v-0', { healthStatus: 200, sealBackendHealthy: false, sealBackend: 'unhealthy since 2026-11-27T10:00:00Z' })],
      topology: topo,
      expectedSealType: 'awskms',
    });
    expect(r.summary).toBe('degraded: v-0 seal backend unhealthy since 2026-11-27T10:00:00Z');
    const w = judgeNodes({ reports: [node('bao-1', { healthStatus: 200 }), node('bao-2', { version: '2.6.3' })], topology: topo, expectedSealType: 'awskms' });
    expect(w.status).toBe('warn');
  });
});

const server = (id: string, over: Record<string, unknown> = {}) => ({
  id,
  name: id,
  address: `127.0.0.1:1821${id.slice(-1)}`,
  node_status: 'alive',
  last_contact: '500ms',
  last_term: 3,
  last_index: 62,
  healthy: true,
  status: 'voter',
  version: '2.6.2',
  node_type: 'voter',
  ...over,
});
const state = (over: Partial<AutopilotState> = {}, servers = [server('bao-1', { status: 'leader', last_contact: '0s' }), server('bao-2'), server('bao-3')]): AutopilotState => ({
  healthy: true,
  failure_tolerance: 1,
  leader: 'bao-1',
  voters: servers.map((s) => s.id),
  servers: Object.fromEntries(servers.map((s) => [s.id, s])),
  ...over,
});

describe('judgeRaft', () => {
  it('passes a healthy three-voter cluster', () => {
    expect(judgeRaft(state(), { expectedVoters: 3, minFailureTolerance: 1 })).toMatchObject({ status: 'ok', summary: 'healthy, leader bao-1, 3 voters, failure tolerance 1' });
  });

  it('names a stopped node and the reduced failure tolerance', () => {
    const down = state({ healthy: false, failure_tolerance: 0 }, [
      server('bao-1', { status: 'leader' }),
      server('bao-2', { node_status: 'failed', healthy: false, last_contact: '12.5s', last_index: 40 }),
      server('bao-3'),
    ]);
    const r = judgeRaft(down, { expectedVoters: 3, minFailureTolerance: 1 });
    expect(r).toMatchObject({ status: 'fail', class: 'degraded' });
    expect(r.summary).toBe('degraded: bao-2 failed (last contact 12.5s ago), failure tolerance 0 (needs 1)');
    expect(r.details).toMatchObject({ failureTolerance: 0 });
  });

  it('names a node that is behind, and counts lost voters', () => {
    const behind = judgeRaft(state({ healthy: false }, [server('bao-1', { status: 'leader', last_index: 5000 }), server('bao-2', { healthy: false, last_index: 3000 }), server('bao-3', { last_index: 5000 })]), {
      expectedVoters: 3,
      minFailureTolerance: 1,
    });
    expect(behind.summary).toBe('degraded: bao-2 unhealthy (behind by 2000 entries), last contact 500ms ago');
    const two = state({ failure_tolerance: 0, voters: ['bao-1', 'bao-2'] }, [server('bao-1', { status: 'leader' }), server('bao-2')]);
    expect(judgeRaft(two, { expectedVoters: 3, minFailureTolerance: 0 }).summary).toBe('degraded: 2 voters, expected 3');
  });
});

describe('buildTopology', () => {
  const ha = [1, 2].map((i) => ({ api_address: `http://127.0.0.1:1820${i}`, cluster_address: `https://127.0.0.1:1821${i}` }));
  const raft = [1, 2, 3].map((i) => ({ node_id: `bao-${i}`, address: `127.0.0.1:1821${i}`, leader: i === 1, voter: true }));

  it('joins sys/ha-status and the Raft configuration on the cluster address, inferring a silent member’s address', () => {
    const t = buildTopology({ configured: [], vaultAddresses: ['http://127.0.0.1:18201'], allowInsecureHttp: false, ha, raft });
    expect(t.source).toBe('discovered');
    expect(t.targets).toEqual([
      { name: 'bao-1', address: 'http://127.0.0.1:18201', nodeId: 'bao-1', voter: true },
      { name: 'bao-2', address: 'http://127.0.0.1:18202', nodeId: 'bao-2', voter: true },
      { name: 'bao-3', address: 'http://127.0.0.1:18203', nodeId: 'bao-3', voter: true },
    ]);
    expect(t.silentMembers).toEqual([]);
  });

  it('reports a silent member by name when no common address rule exists', () => {
    const mixed = [ha[0]!, { api_address: 'http://127.0.0.1:9999', cluster_address: 'https://127.0.0.1:18212' }];
    const t = buildTopology({ configured: [], vaultAddresses: [], allowInsecureHttp: false, ha: mixed, raft });
    expect(t.targets.map((x) => x.name)).toEqual(['bao-1', 'bao-2']);
    expect(t.silentMembers.map((m) => m.nodeId)).toEqual(['bao-3']);
  });

  it('infers the Helm chart’s rule: same host, API port one below the cluster port', () => {
    const k8s = [0, 1].map((i) => ({ api_address: `https://vault-${i}.vault-internal:8200`, cluster_address: `https://vault-${i}.vault-internal:8201` }));
    const map = inferApiMapping(k8s)!;
    expect(map('vault-2.vault-internal:8201')).toBe('https://vault-2.vault-internal:8200');
    expect(inferApiMapping([{ api_address: 'https://vault.example:8200', cluster_address: 'https://10.0.0.1:8201' }])).toBeUndefined();
  });

  it('prefers the configured list, names what it can, and falls back to vault.address', () => {
    const c = buildTopology({ configured: ['http://127.0.0.1:18202/', 'http://127.0.0.1:18209'], vaultAddresses: [], allowInsecureHttp: false, ha, raft });
    expect(c.targets).toEqual([
      { name: 'bao-2', address: 'http://127.0.0.1:18202', nodeId: 'bao-2', voter: true },
      { name: '127.0.0.1:18209', address: 'http://127.0.0.1:18209' },
    ]);
    const f = buildTopology({ configured: [], vaultAddresses: ['http://127.0.0.1:18201'], allowInsecureHttp: false, ha: undefined, raft: undefined });
    expect(f.source).toBe('vault address');
    expect(f.targets).toHaveLength(1);
    // vault.address beside fallbacks it is not one of: maybe a Service, marked for the quorum verdict.
    const s = buildTopology({ configured: [], vaultAddresses: ['http://127.0.0.1:8200', 'http://127.0.0.1:18201', 'http://127.0.0.1:18202'], allowInsecureHttp: false, ha: undefined, raft: undefined });
    expect(s.targets.map((x) => [x.address, x.entry ?? false])).toEqual([['http://127.0.0.1:8200', true], ['http://127.0.0.1:18201', false], ['http://127.0.0.1:18202', false]]);
    const same = buildTopology({ configured: [], vaultAddresses: ['http://127.0.0.1:18201', 'http://127.0.0.1:18201/', 'http://127.0.0.1:18202'], allowInsecureHttp: false, ha: undefined, raft: undefined });
    expect(same.targets.some((x) => x.entry)).toBe(false);
  });

  it('refuses plain http to a remote node: the token would travel in clear', () => {
    const t = buildTopology({ configured: ['http://vault-1.example:8200', 'https://vault-2.example:8200'], vaultAddresses: [], allowInsecureHttp: false, ha: undefined, raft: undefined });
    expect(t.targets.map((x) => x.address)).toEqual(['https://vault-2.example:8200']);
    expect(t.refused).toHaveLength(1);
  });
});

describe('judgeExpiry and formatDuration', () => {
  const now = Date.parse('2026-11-27T00:00:00Z');
  it('passes a token far from expiry, fails a close or expired one as stale', () => {
    expect(judgeExpiry('2027-01-01T00:00:00Z', 7 * 86_400, now)).toMatchObject({ status: 'ok', summary: 'expires in 35d' });
    expect(judgeExpiry('2026-11-29T12:00:00Z', 7 * 86_400, now)).toMatchObject({ status: 'fail', class: 'stale', summary: 'stale: break-glass token expires in 2d 12h (wanted at least 7d)' });
    expect(judgeExpiry('2026-11-26T00:00:00Z', 7 * 86_400, now).summary).toBe('stale: break-glass token expired 1d ago');
    expect(judgeExpiry('yesterday', 1, now)).toMatchObject({ status: 'fail', class: 'other' });
  });
  it('formats the two largest units', () => {
    expect(formatDuration(93_784)).toBe('1d 2h');
    expect(formatDuration(125)).toBe('2m 5s');
    expect(formatDuration(0)).toBe('0s');
  });
});

describe('shortGoDuration', () => {
  it('rounds Go durations for people', async () => {
    const { shortGoDuration } = await import('../src/checks/raft.ts');
    expect(shortGoDuration('2.574983978s')).toBe('2.57s');
    expect(shortGoDuration('966.36787ms')).toBe('966ms');
    expect(shortGoDuration('1m3.2s')).toBe('1m3.2s');
    expect(shortGoDuration('12s')).toBe('12s');
    expect(shortGoDuration('100.2ms')).toBe('100ms');
    expect(shortGoDuration('1.004s')).toBe('1s');
  });
});
