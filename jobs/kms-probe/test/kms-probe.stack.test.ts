// The probe against the local stack: moto's KMS and S3, the 3-node OpenBao, the Pushgateway.
// The shared unseal key is never touched: faults are shown on fresh keys made for each test, on
// loopback ports of our own (closed, or accepting and never answering), and on one standby node
// that each test puts back, waiting for a healthy 3-voter cluster before it ends.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, DisableKeyCommand, KMSClient, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi, waitFor } from '../../../test/stack/http.ts';
import { startDetached } from '../../../test/stack/proc.ts';
import {
  leaderIndex,
  mintServiceAccountToken,
  nodeHealth,
  nodeProcessName,
  readStack,
  startNode,
  stopNode,
  waitForHealthyCluster,
  type StackInfo,
} from '../../../test/stack/stack.ts';
import { findPlantedSecrets, runJobProcess, type JobRun } from '../../../test/support/run-job.ts';

let stack: StackInfo;
let kms: KMSClient;
const run = (env: Record<string, string | undefined> = {}, opts: Partial<Parameters<typeof runJobProcess>[0]> = {}) =>
  runJobProcess({ job: 'kms-probe', env: { KMS_PROBE_TABLE: 'true', ...env }, timeoutMs: 90_000, ...opts });
/** The table the probe printed (its non-JSON stdout lines), shown in the test output for a reader. */
const showTable = (title: string, r: JobRun) =>
  process.stdout.write(`\n--- ${title} (exit ${r.code})\n${r.stdout.split('\n').filter((l) => !l.startsWith('{')).join('\n')}\n`);
type Summary = { checks: Record<string, { status: string; class?: string; summary: string; severity: string }>; failed: string[]; healthy: boolean };
const summaryOf = (r: JobRun) => r.summary as unknown as Summary;

beforeAll(async () => {
  stack = readStack();
  kms = new KMSClient({
    region: stack.aws.region,
    endpoint: stack.aws.endpoint,
    credentials: { accessKeyId: stack.aws.accessKeyId, secretAccessKey: stack.aws.secretAccessKey },
  });
  await waitForHealthyCluster(3);
});
// Temporary files (a service-account token, configs) go when the file's tests are done.
const tempDirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

// The keys made here are left scheduled for deletion (moto keeps them in memory until it stops).
const madeKeys: Array<{ client: KMSClient; keyId: string }> = [];
afterAll(async () => {
  for (const { client, keyId } of madeKeys) {
    await client.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })).catch(() => undefined);
  }
  for (const client of new Set([kms, ...madeKeys.map((k) => k.client)])) client.destroy();
});

async function freshKey(policy?: object): Promise<string> {
  const res = await kms.send(
    new CreateKeyCommand({
      Description: `kms-probe test ${randomBytes(4).toString('hex')}`,
      Tags: [{ TagKey: 'owner', TagValue: 'kms-probe-test' }],
      ...(policy ? { Policy: JSON.stringify(policy) } : {}),
    }),
  );
  madeKeys.push({ client: kms, keyId: res.KeyMetadata!.KeyId! });
  return res.KeyMetadata!.KeyId!;
}

async function pushedSeries(metric: string): Promise<string[]> {
  const text = await (await fetch(`${stack.pushgateway.url}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(`${metric}{`) && l.includes('job="vaultkeeper_kms_probe"'));
}

describe('kms-probe against the local stack', () => {
  it('everything healthy: exit 0, every check ok, every metric up, the table printed, nothing secret in the output', async () => {
    // Our own service-account JWT (auth: none) so that we know it and can look for it in the output;
    // a planted AWS secret key (moto accepts any) for the same reason.
    const dir = tempDir('kms-probe-test-');
    const jwt = await mintServiceAccountToken('vaultkeeper', 'vaultkeeper-kms-probe', { audience: 'vault' });
    writeFileSync(join(dir, 'token'), jwt, { mode: 0o600 });
    const awsSecret = `planted-aws-secret-${randomBytes(12).toString('hex')}`;
    const r = await run(
      { VAULT_AUTH_ROLE: 'vaultkeeper-kms-probe', VAULT_AUTH_TOKEN_PATH: join(dir, 'token'), AWS_SECRET_ACCESS_KEY: awsSecret },
      { auth: 'none' },
    );
    expect(r.code, r.all).toBe(0);
    const s = summaryOf(r);
    for (const name of ['kms-key', 'kms-roundtrip', 'vault-nodes', 'raft']) expect(s.checks[name]?.status, name).toBe('ok');
    expect(s.checks['vault-nodes']!.summary).toMatch(/^3 unsealed \(1 active, 2 standby\), awskms/);
    expect(s.checks.raft!.summary).toMatch(/^healthy, leader bao-\d, 3 voters, failure tolerance 1$/);
    expect(r.stdout).toMatch(/^CHECK +RESULT +SEVERITY +LATENCY +DETAIL$/m);
    expect(r.stdout).toMatch(/^RESULT: OK$/m);
    // One JSON summary line.
    expect(r.lines.filter((l) => l.msg === 'finished')).toHaveLength(1);

    const up = await pushedSeries('vaultkeeper_kms_probe_check_up');
    expect(up).toHaveLength(4);
    for (const line of up) expect(line).toMatch(/class="none".* 1$/);
    expect(await pushedSeries('vaultkeeper_kms_probe_check_latency_seconds')).toHaveLength(4);

    expect(findPlantedSecrets(r.all, { jwt, awsSecret, rootToken: stack.openbao.rootToken })).toEqual([]);
    // The probe's own Vault token (OpenBao service tokens are s.<24 chars>) is never printed.
    expect(r.all).not.toMatch(/\bs\.[A-Za-z0-9]{24}\b/);
  });

  it('key disabled in KMS: "key unusable: disabled", exit 1', async () => {
    const keyId = await freshKey();
    await kms.send(new DisableKeyCommand({ KeyId: keyId }));
    const r = await run({ VAULT_AWSKMS_SEAL_KEY_ID: keyId });
    showTable('key disabled', r);
    expect(r.code, r.all).toBe(1);
    const check = summaryOf(r).checks['kms-key']!;
    expect(check).toMatchObject({ status: 'fail', class: 'key-unusable', summary: 'key unusable: disabled' });
    expect(summaryOf(r).failed).toContain('kms-key: key unusable: disabled');
    expect(await pushedSeries('vaultkeeper_kms_probe_check_up')).toContain(
      'vaultkeeper_kms_probe_check_up{check="kms-key",class="key-unusable",instance="",job="vaultkeeper_kms_probe",severity="critical"} 0',
    );
    // moto does not refuse Encrypt/Decrypt on a disabled key (real KMS raises DisabledException,
    // classified the same way: see classify-aws-error.unit.test.ts), so only kms-key can see it here.
  });

  it('key scheduled for deletion: "key unusable: pending deletion", exit 1', async () => {
    const keyId = await freshKey();
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    const r = await run({ VAULT_AWSKMS_SEAL_KEY_ID: keyId });
    expect(r.code, r.all).toBe(1);
    const check = summaryOf(r).checks['kms-key']!;
    expect(check).toMatchObject({ status: 'fail', class: 'key-unusable' });
    expect(check.summary).toMatch(/^key unusable: pending deletion, deleted on \d{4}-\d\d-\d\dT.* unless cancelled$/);
  });

  it('a key policy that denies DescribeKey: "denied", exit 1', async () => {
    const keyId = await freshKey({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'Admin', Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:*', Resource: '*' },
        { Sid: 'NoDescribe', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:DescribeKey', Resource: '*' },
      ],
    });
    const r = await run({ VAULT_AWSKMS_SEAL_KEY_ID: keyId });
    expect(r.code, r.all).toBe(1);
    expect(summaryOf(r).checks['kms-key']).toMatchObject({ status: 'fail', class: 'denied', summary: 'denied: access denied by an IAM policy, the key policy or a grant (DescribeKey)' });
  });

  it('KMS endpoint stopped: both KMS checks "unreachable", exit 1, the Vault checks still pass', async () => {
    const port = await closedPort();
    const r = await run({ AWS_KMS_ENDPOINT: `http://127.0.0.1:${port}` });
    showTable('KMS endpoint stopped', r);
    expect(r.code, r.all).toBe(1);
    const s = summaryOf(r);
    expect(s.checks['kms-key']).toMatchObject({ status: 'fail', class: 'unreachable', summary: 'unreachable: connection refused (DescribeKey)' });
    expect(s.checks['kms-roundtrip']).toMatchObject({ status: 'fail', class: 'unreachable', summary: 'unreachable: connection refused (Encrypt)' });
    expect(s.checks['vault-nodes']!.status).toBe('ok');
    expect(await pushedSeries('vaultkeeper_kms_probe_check_up')).toContain(
      'vaultkeeper_kms_probe_check_up{check="kms-roundtrip",class="unreachable",instance="",job="vaultkeeper_kms_probe",severity="critical"} 0',
    );
  });

  it('login refused (wrong role): raft says denied, the nodes are still probed without a token', async () => {
    const r = await run({ VAULT_AUTH_ROLE: 'vaultkeeper-raft-snapshot' });
    showTable('login refused', r);
    expect(r.code, r.all).toBe(1);
    const s = summaryOf(r);
    expect(s.checks.raft).toMatchObject({ status: 'fail', class: 'denied' });
    expect(s.checks.raft!.summary).toBe('denied: login: permission denied (the auth role refused the service account)');
    expect(s.checks['vault-nodes']!.status).toBe('warn');
    expect(s.checks['kms-key']!.status).toBe('ok');
  });

  it('every endpoint accepts and never answers: the run still ends by its deadline, without a retry storm', async () => {
    const hang = await hangingServer();
    try {
      const dir = tempDir('kms-probe-hang-');
      const config = join(dir, 'config.yaml');
      writeFileSync(config, 'metrics:\n  pushTimeoutSeconds: 2\n');
      const at = `http://127.0.0.1:${hang.port}`;
      const started = Date.now();
      const r = await run(
        {
          VAULT_ADDR: at,
          KMS_PROBE_NODES: at,
          AWS_KMS_ENDPOINT: at,
          KMS_PROBE_SNAPSHOT_BUCKET: 'vaultkeeper-snapshots',
          AWS_ENDPOINT_URL_S3: at,
          KMS_PROBE_EMERGENCY_TOKEN: 'true',
          PUSHGATEWAY_URL: at,
          KMS_PROBE_DEADLINE: '6s',
          KMS_PROBE_KMS_TIMEOUT: '2s',
          KMS_PROBE_NODE_TIMEOUT: '2s',
          VAULTKEEPER_CONFIG: config,
        },
        { timeoutMs: 60_000 },
      );
      const elapsed = (Date.now() - started) / 1000;
      showTable('every endpoint hangs', r);
      expect(r.code, r.all).toBe(1);
      // Deadline 6 s + metrics push 2 s + process start-up; no cleanup call (never logged in).
      expect(elapsed).toBeLessThan(13);
      const s = summaryOf(r);
      for (const name of ['kms-key', 'kms-roundtrip', 'vault-nodes', 'snapshot-age']) {
        expect(s.checks[name], name).toMatchObject({ status: 'fail', class: 'unreachable' });
      }
      // raft and emergency-token need a token; the login hung: their class says why.
      expect(s.checks.raft).toMatchObject({ status: 'fail', class: 'unreachable' });
      expect(s.checks.raft!.summary).toMatch(/^unreachable: login/);
      // Bounded attempts: KMS 2 calls x 2 attempts, S3 1 x 2, login 1, one node x 2 calls, push 1.
      expect(hang.connections()).toBeLessThanOrEqual(14);
      process.stdout.write(`hanging endpoints: run ended after ${elapsed.toFixed(1)} s, ${hang.connections()} connections\n`);
    } finally {
      await hang.close();
    }
  });

  // snapshot-age against snapshots the raft-snapshot job stored: snapshot-age.stack.test.ts.

  it('emergency-token: an expiry too close is stale, and fails the run only when made critical', async () => {
    const name = `kms-probe-test-${randomBytes(4).toString('hex')}`;
    const path = `secret/data/vaultkeeper/emergency-token/${name}`;
    const write = (expiresAt: Date) =>
      baoApi(stack.openbao.addr, 'POST', path, { token: stack.openbao.rootToken, body: { data: { expiresAt: expiresAt.toISOString() } } });
    const env = { KMS_PROBE_EMERGENCY_TOKEN: 'true', KMS_PROBE_EMERGENCY_TOKEN_PATH: path };
    try {
      expect((await write(new Date(Date.now() + 2 * 86_400_000))).status).toBe(200);
      const soon = await run(env);
      expect(soon.code, soon.all).toBe(0);
      expect(summaryOf(soon).checks['emergency-token']).toMatchObject({ status: 'fail', class: 'stale', summary: expect.stringMatching(/^stale: break-glass token expires in 1d 23h|^stale: break-glass token expires in 2d/) });
      const critical = await run({ ...env, KMS_PROBE_CRITICAL: 'kms-key,kms-roundtrip,vault-nodes,raft,emergency-token' });
      expect(critical.code).toBe(1);
      await write(new Date(Date.now() + 30 * 86_400_000));
      expect(summaryOf(await run(env)).checks['emergency-token']).toMatchObject({ status: 'ok', summary: expect.stringMatching(/^expires in (29d 23h|30d)/) });
    } finally {
      await baoApi(stack.openbao.addr, 'DELETE', path.replace('/data/', '/metadata/'), { token: stack.openbao.rootToken });
    }
  });

  it('SIGTERM while a call hangs: stops at once, revokes its Vault token, exit 1', async () => {
    const hang = await hangingServer();
    let signalledAt = 0;
    try {
      const r = await run(
        { AWS_KMS_ENDPOINT: `http://127.0.0.1:${hang.port}`, KMS_PROBE_KMS_TIMEOUT: '30s', KMS_PROBE_DEADLINE: '60s' },
        {
          onLine: (line, child) => {
            // Once logged in, the Vault checks are done quickly and only the KMS calls still hang.
            if (!signalledAt && line.includes('"logged in to Vault"')) {
              setTimeout(() => {
                signalledAt = Date.now();
                child.kill('SIGTERM');
              }, 1_000);
            }
          },
        },
      );
      const after = (Date.now() - signalledAt) / 1000;
      expect(r.code, r.all).toBe(1);
      expect(after).toBeLessThan(5);
      expect(r.lines.some((l) => l.msg === 'run aborted')).toBe(true);
      expect(r.lines.some((l) => l.msg === 'login token revoked')).toBe(true);
    } finally {
      await hang.close();
    }
  });

  describe('a standby node stopped (put back afterwards)', () => {
    let stopped: number | undefined;
    afterAll(async () => {
      if (stopped !== undefined) await startNode(stopped);
      await waitForHealthyCluster(3);
    });

    it('raft names the node and the reduced failure tolerance; vault-nodes reports it unreachable', async () => {
      stopped = await pickStandby();
      const name = stack.openbao.nodes[stopped]!.id;
      await stopNode(stopped);
      // Autopilot marks a server failed once it misses its last-contact threshold: wait for that.
      await waitFor(`autopilot to notice ${name} is gone`, 60_000, async () => {
        const leader = stack.openbao.nodes[await leaderIndex()]!;
        const res = await baoApi(leader.addr, 'GET', 'sys/storage/raft/autopilot/state', { token: stack.openbao.rootToken });
        return res.body?.data?.failure_tolerance === 0 && res.body?.data?.servers?.[name]?.healthy === false;
      });
      const r = await run();
      showTable(`${name} stopped`, r);
      expect(r.code, r.all).toBe(1);
      const s = summaryOf(r);
      expect(s.checks.raft).toMatchObject({ status: 'fail', class: 'degraded' });
      expect(s.checks.raft!.summary).toContain(name);
      expect(s.checks.raft!.summary).toContain('failure tolerance 0 (needs 1)');
      expect(s.checks['vault-nodes']).toMatchObject({ status: 'fail', class: 'unreachable' });
      expect(s.checks['vault-nodes']!.summary).toContain(name);
      expect(await pushedSeries('vaultkeeper_kms_probe_raft_failure_tolerance')).toEqual([
        'vaultkeeper_kms_probe_raft_failure_tolerance{instance="",job="vaultkeeper_kms_probe"} 0',
      ]);
    });
  });
});

describe('a standby node sealed (put back afterwards)', () => {
  let sealed: number | undefined;
  afterAll(async () => {
    if (sealed !== undefined) {
      await stopNode(sealed);
      await startNode(sealed);
    }
    await waitForHealthyCluster(3);
  });

  it('is reported as sealed, by name', async () => {
    // A standby cannot be sealed through the API ("vault cannot seal when in standby mode; please
    // restart instead"), and sealing the active node would fail the cluster over under the other
    // engineers' feet. So: the failure this probe exists for. The node restarts with its seal
    // pointing at a key that exists (DescribeKey passes, the process starts) but in another region,
    // where the stored barrier keys cannot be decrypted: it stays up, and sealed.
    const west = new KMSClient({
      region: 'us-west-2',
      endpoint: stack.aws.endpoint,
      credentials: { accessKeyId: stack.aws.accessKeyId, secretAccessKey: stack.aws.secretAccessKey },
    });
    const keyId = (await west.send(new CreateKeyCommand({ Description: 'kms-probe test: wrong region' }))).KeyMetadata!.KeyId!;
    madeKeys.push({ client: west, keyId });
    sealed = await pickStandby();
    const node = stack.openbao.nodes[sealed]!;
    const original = readFileSync(node.configFile, 'utf8');
    const broken = original.replace(/(seal\s+"awskms"\s*\{[^}]*?)region\s*=\s*"[^"]*"/, '$1region = "us-west-2"').replace(/kms_key_id\s*=\s*"[^"]*"/, `kms_key_id = "${keyId}"`);
    expect(broken).not.toBe(original);
    const config = join(tempDir('kms-probe-sealed-'), 'config.hcl');
    writeFileSync(config, broken);
    await stopNode(sealed);
    startDetached(nodeProcessName(sealed), stack.openbao.binary, ['server', `-config=${config}`]);
    await waitFor(`${node.id} up and sealed`, 30_000, async () => (await nodeHealth(sealed!)) === 503);

    const r = await run();
    showTable(`${node.id} sealed`, r);
    expect(r.code, r.all).toBe(1);
    const check = summaryOf(r).checks['vault-nodes']!;
    expect(check).toMatchObject({ status: 'fail', class: 'sealed' });
    expect(check.summary).toContain(`sealed: ${node.id}`);
  });
});

/** A standby that is not node 0 (VAULT_ADDR, where the probe logs in). */
async function pickStandby(): Promise<number> {
  const leader = await leaderIndex();
  return [1, 2].find((i) => i !== leader)!;
}

async function closedPort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function hangingServer(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const srv: Server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
  }).listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    port: (srv.address() as { port: number }).port,
    connections: () => sockets.length,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}
