// What the emergency-token stack tests share: a root Vault client on the active node, the job's
// policies and roles (re-applied, so a stack started before a policy change still tests the files
// in policies/emergency-token), one isolated scenario per test (its own KV record, S3 key and KMS
// encryption context), and cleanup that revokes every credential the scenarios made.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { createLogger } from '@vaultkeeper/runtime';
import { VaultError, clusterIdentity, type VaultClient } from '@vaultkeeper/vault';
import { POLICIES_DIR, REPO_ROOT } from '../../../test/stack/layout.ts';
import { applyPolicies, loadPolicies } from '../../../test/stack/policies.ts';
import { readStack } from '../../../test/stack/stack.ts';
import { runJobProcess, type JobRun, type RunJobProcessOptions } from '../../../test/support/run-job.ts';
import { stackVaultClient } from '../../../test/support/vault-client.ts';
import type { BreakGlassCredential } from '../src/credential.ts';
import { S3EnvelopeSink } from '../src/sinks/s3-envelope.ts';
import { stateRecord, type StateRecord } from '../src/state-record.ts';

export const JOB = 'emergency-token';
const silent = createLogger({ job: 'test', level: 'silent' });

/** Root client that follows the active node (other engineers' tests move the leader around). */
export async function rootVault(): Promise<VaultClient> {
  const stack = readStack();
  const c = stackVaultClient(
    {
      address: stack.openbao.addr,
      callDeadlineSeconds: 60,
    },
    silent,
  );
  c.setToken(stack.openbao.rootToken, false);
  await c.findActiveNode();
  return c;
}

/**
 * The job's own policies, token roles and AppRole role from policies/emergency-token, applied
 * again (idempotently) so a test that crippled one of them starts from the files.
 */
export async function bootstrapEmergencyToken(): Promise<void> {
  const stack = readStack();
  const vault = await rootVault();
  try {
    const all = loadPolicies();
    const mine = (f: string) => f.startsWith(join(POLICIES_DIR, JOB) + '/');
    await applyPolicies(vault.currentNode, stack.openbao.rootToken, {
      policies: all.policies.filter((p) => mine(p.file)),
      tokenRoles: all.tokenRoles.filter((r) => mine(r.file)),
      kubernetesRoles: all.kubernetesRoles.filter((r) => mine(r.file)),
      approleRoles: all.approleRoles.filter((r) => mine(r.file)),
    });
  } finally {
    vault.close();
  }
}

export interface Scenario {
  id: string;
  statePath: string;
  s3Key: string;
  cluster: string;
  env: Record<string, string>;
}

/** One isolated set of names: nothing another test (or another engineer) uses. */
export function scenario(name: string, extra: Record<string, string> = {}): Scenario {
  const id = `${name}-${randomUUID().slice(0, 8)}`;
  const statePath = `vaultkeeper/emergency-token/test/${id}/state`;
  const s3Key = `emergency-token/test/${id}/breakglass.json`;
  const cluster = `t-${id}`.slice(0, 64);
  return {
    id,
    statePath,
    s3Key,
    cluster,
    env: {
      BREAKGLASS_STATE_PATH: statePath,
      BREAKGLASS_S3_BUCKET: readStack().aws.buckets.breakglass,
      BREAKGLASS_S3_KEY: s3Key,
      BREAKGLASS_CLUSTER: cluster,
      BREAKGLASS_CLI: 'bao',
      ...extra,
    },
  };
}

/**
 * Builds dist/emergency-token.mjs, what the CronJob runs. Tests that stop or kill the job at a
 * given moment run the bundle: under tsx the job is a child of the tsx process, which would take
 * the SIGSTOP/SIGKILL instead of the job.
 */
export function buildBundle(): void {
  const dir = join(REPO_ROOT, 'jobs', JOB);
  execFileSync(process.execPath, [join(REPO_ROOT, 'packages/runtime/bin/bundle.mjs'), 'src/main.ts', `dist/${JOB}.mjs`], { cwd: dir, stdio: 'pipe' });
}

export function runEmergencyToken(s: Scenario, args: string[] = [], opts: Partial<RunJobProcessOptions> = {}): Promise<JobRun> {
  return runJobProcess({ job: JOB, args, ...opts, env: { ...s.env, ...opts.env } });
}

export async function readState(s: Scenario): Promise<StateRecord & { version: number }> {
  const vault = await rootVault();
  try {
    const res = (await vault.read(`secret/data/${s.statePath}`)) as { data: unknown; metadata: { version: number } };
    return { ...stateRecord.parse(res.data), version: res.metadata.version };
  } catch (err) {
    if (err instanceof VaultError && err.status === 404) return { version: 0 };
    throw err;
  } finally {
    vault.close();
  }
}

export async function tokenAlive(accessor: string): Promise<boolean> {
  const vault = await rootVault();
  try {
    await vault.write('auth/token/lookup-accessor', { accessor }, undefined, { idempotent: true });
    return true;
  } catch (err) {
    if (err instanceof VaultError && err.status === 400) return false;
    throw err;
  } finally {
    vault.close();
  }
}

export async function secretIdAlive(accessor: string): Promise<boolean> {
  const vault = await rootVault();
  try {
    await vault.write('auth/approle/role/breakglass/secret-id-accessor/lookup', { secret_id_accessor: accessor }, undefined, { idempotent: true });
    return true;
  } catch (err) {
    if (err instanceof VaultError && (err.status === 404 || err.status === 400)) return false;
    throw err;
  } finally {
    vault.close();
  }
}

export function awsClients(): { s3: S3Client; kms: KMSClient } {
  const { aws } = readStack();
  const common = { endpoint: aws.endpoint, region: aws.region, credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey } };
  return { s3: new S3Client({ ...common, forcePathStyle: true }), kms: new KMSClient(common) };
}

/** The stack cluster's cluster_id (sys/health), which the job puts in the envelope's KMS context. */
export async function clusterIdOf(addr = readStack().openbao.addr): Promise<string> {
  const c = stackVaultClient({ address: addr }, silent);
  try {
    const id = (await clusterIdentity(c)).id;
    if (!id) throw new Error(`${addr} reports no cluster_id`);
    return id;
  } finally {
    c.close();
  }
}

/**
 * The job's own S3 sink class on the real moto S3 and KMS: what `reveal` would show. `where`
 * overrides the scenario's key, label and cluster id (default: the stack cluster's).
 */
export async function sinkHolds(s: Pick<Scenario, 's3Key' | 'cluster'>, where: { clusterId?: string; kmsKeyId?: string } = {}): Promise<BreakGlassCredential | undefined> {
  const { s3, kms } = awsClients();
  try {
    const sink = new S3EnvelopeSink(s3, kms, {
      bucket: readStack().aws.buckets.breakglass,
      key: s.s3Key,
      kmsKeyId: where.kmsKeyId ?? 'alias/vaultkeeper-data',
      encryptionContext: { cluster: s.cluster, clusterId: where.clusterId ?? (await clusterIdOf()), purpose: 'vaultkeeper-breakglass' },
    });
    return (await sink.current())?.credential;
  } finally {
    s3.destroy();
    kms.destroy();
  }
}

/** A Vault client that uses `token` (a launcher or an admin token), on the active node. */
export async function clientWith(token: string): Promise<VaultClient> {
  const c = await rootVault();
  c.setToken(token, false);
  return c;
}

/** Accessors every scenario created, revoked in afterAll so no month-long launcher outlives the tests. */
export const madeAccessors = new Set<string>();

export function noteAccessors(record: StateRecord): void {
  if (record.accessor) madeAccessors.add(record.accessor);
  if (record.pending?.accessor) madeAccessors.add(record.pending.accessor);
}

export async function revokeAll(): Promise<void> {
  const vault = await rootVault();
  try {
    for (const accessor of madeAccessors) {
      await vault.write('auth/token/revoke-accessor', { accessor }, undefined, { idempotent: true }).catch(() => undefined);
    }
  } finally {
    vault.close();
  }
}

/** Every `finished` summary and log line, for asserting on what the job said. */
export function messages(run: JobRun): string[] {
  return run.lines.map((l) => String(l.msg));
}

/** The new accessor a run announced before it failed or was stopped. */
export function createdAccessor(run: JobRun): string {
  const line = run.lines.find((l) => l.msg === 'new credential created and recorded as pending');
  expect(line, run.all).toBeDefined();
  return line!.accessor as string;
}
