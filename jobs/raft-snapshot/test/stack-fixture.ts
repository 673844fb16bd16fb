// What the raft-snapshot stack tests share: a private key prefix in the shared bucket (removed
// afterwards), direct S3 access to check what the job left behind, a private KV mount to make the
// snapshot big, and a way to run the job with all of that.
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baoApi, baoOk, waitFor } from '../../../test/stack/http.ts';
import { REPO_ROOT, realBaoBinary } from '../../../test/stack/layout.ts';
import { serverEnv } from '../../../test/stack/proc.ts';
import { readStack, type StackInfo } from '../../../test/stack/stack.ts';
import { runJobProcess, type JobRun, type RunJobProcessOptions } from '../../../test/support/run-job.ts';

export const JOB = 'raft-snapshot';

export function s3For(stack: StackInfo, endpoint = stack.aws.endpoint): S3Client {
  return new S3Client({
    region: stack.aws.region,
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: stack.aws.accessKeyId, secretAccessKey: stack.aws.secretAccessKey },
  });
}

export class TestBucket {
  readonly stack = readStack();
  readonly s3 = s3For(this.stack);
  readonly bucket: string;
  readonly prefix: string;
  /** The cluster name the job is told to use, so keys are predictable. */
  readonly cluster = 'stack';

  /** A private prefix in the stack's snapshot bucket, or in `bucket` when given. */
  constructor(name: string, bucket?: string) {
    this.bucket = bucket ?? this.stack.aws.buckets.snapshots;
    this.prefix = `rs-test-${name}-${randomBytes(3).toString('hex')}/`;
  }

  get clusterPrefix(): string {
    return `${this.prefix}${this.cluster}/`;
  }

  async keys(prefix = this.prefix): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      out.push(...(page.Contents ?? []).map((c) => c.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /** Snapshot objects (committed or not; not records, not the lock). */
  async snapshots(): Promise<string[]> {
    return (await this.keys(this.clusterPrefix)).filter((k) => k.endsWith('.snap'));
  }

  /** The record beside a snapshot, parsed. */
  async record(key: string): Promise<Record<string, unknown>> {
    return JSON.parse((await this.get(`${key}.json`)).toString('utf8')) as Record<string, unknown>;
  }

  /** The stack cluster's cluster_id (sys/health), as the job finds it: from any node that answers (tests kill the leader). */
  async clusterId(): Promise<string> {
    this.#clusterId ??= (async () => {
      for (const node of this.stack.openbao.nodes) {
        const res = await baoApi(node.addr, 'GET', 'sys/health').catch(() => undefined);
        if (typeof res?.body?.cluster_id === 'string') return res.body.cluster_id as string;
      }
      throw new Error('no OpenBao node of the stack reports a cluster_id');
    })();
    return this.#clusterId;
  }
  #clusterId: Promise<string> | undefined;

  /** This cluster's own folder (format 3). */
  async ownPrefix(): Promise<string> {
    return `${this.clusterPrefix}${await this.clusterId()}/`;
  }

  /**
   * A small stand-in object named and described like one of the job's snapshots, taken at `takenAt`,
   * with the job's record beside it unless `record: false` (a run that died before committing).
   * Format 3 (this cluster's own folder) unless `legacy: true`: then format 2, exactly as versions
   * before cluster ids wrote them (815e21e: directly in the name's folder, no cluster-id metadata,
   * a format-2 record) — an earlier run of this cluster, or of another cluster of the same name
   * that still runs that version.
   */
  async putSnapshotLike(takenAt: Date, runId: string, opts: { record?: boolean; body?: Buffer | string; legacy?: boolean } = {}): Promise<string> {
    const stamp = takenAt.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
    const id = opts.legacy ? undefined : await this.clusterId();
    const key = `${this.clusterPrefix}${id ? `${id}/` : ''}${this.cluster}-${stamp}-${runId}.snap`;
    const body = opts.body ?? 'stand-in';
    const meta = {
      'vaultkeeper-job': 'raft-snapshot',
      'vaultkeeper-format': id ? '3' : '2',
      cluster: this.cluster,
      ...(id ? { 'cluster-id': id } : {}),
      'raft-index': '1',
      'raft-term': '1',
      'vault-version': 'test',
      'vault-node': 'test',
      'taken-at': takenAt.toISOString(),
      'run-id': runId,
    };
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, Metadata: meta }));
    if (opts.record !== false) {
      const record = {
        job: 'raft-snapshot', format: id ? 3 : 2, ...(id ? { clusterId: id } : {}), key, cluster: this.cluster, takenAt: takenAt.toISOString(), runId,
        sha256: createHash('sha256').update(body).digest('hex'), size: Buffer.byteLength(body), raftIndex: '1', raftTerm: '1',
        vaultVersion: 'test', vaultNode: 'test', verified: [], members: [],
      };
      await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: `${key}.json`, Body: JSON.stringify(record) }));
    }
    return key;
  }

  async uploads(): Promise<Array<{ Key?: string; UploadId?: string }>> {
    const res = await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.prefix }));
    return res.Uploads ?? [];
  }

  async head(key: string) {
    return this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async get(key: string): Promise<Buffer> {
    const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  async clean(): Promise<void> {
    for (const u of await this.uploads()) {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
    }
    const keys = await this.keys();
    for (let i = 0; i < keys.length; i += 1000) {
      await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }));
    }
  }

  /** Runs the job with this prefix, Kubernetes auth as vaultkeeper-raft-snapshot, and the stack's S3/KMS. */
  run(args: string[] = [], env: Record<string, string | undefined> = {}, opts: Partial<RunJobProcessOptions> = {}): Promise<JobRun> {
    return runJobProcess({
      job: JOB,
      args,
      timeoutMs: 180_000,
      ...opts,
      env: {
        SNAPSHOT_S3_BUCKET: this.bucket,
        SNAPSHOT_S3_PREFIX: this.prefix,
        SNAPSHOT_CLUSTER: this.cluster,
        SNAPSHOT_S3_FORCE_PATH_STYLE: 'true',
        SNAPSHOT_S3_KMS_KEY_ID: this.stack.aws.dataKey.alias,
        SNAPSHOT_S3_PART_SIZE_MIB: '5',
        LOG_LEVEL: 'debug',
        // Tests point VAULT_ADDR at one node's own address, which the nodes' certificate does not
        // name (it names the Service): say which name to check, as an operator would.
        ...(this.stack.openbao.tls ? { VAULT_TLS_SERVER_NAME: this.stack.openbao.tls.serverName } : {}),
        ...env,
      },
    });
  }
}

/** Applies policies/raft-snapshot/policy.hcl to the running stack (it may be newer than the stack). */
export async function applyJobPolicy(stack = readStack()): Promise<void> {
  const hcl = readFileSync(join(REPO_ROOT, 'policies', JOB, 'policy.hcl'), 'utf8');
  await baoOk(stack.openbao.addr, 'PUT', `sys/policies/acl/vaultkeeper-${JOB}`, { token: stack.openbao.rootToken, body: { policy: hcl } });
}

/**
 * A private KV v2 mount holding `mib` MiB of random data (incompressible, like Vault's encrypted
 * storage), so that snapshots are big enough to be multipart and to take a while to stream.
 * Returns a function that unmounts it (which deletes the data).
 */
export async function fillKv(mount: string, mib: number, stack = readStack()): Promise<() => Promise<void>> {
  const { addr, rootToken: token } = stack.openbao;
  await baoOk(addr, 'POST', `sys/mounts/${mount}`, { token, body: { type: 'kv', options: { version: '2' } } });
  // A new KV v2 mount answers 400 ("upgrading from non-versioned to versioned data") for a moment.
  await waitFor(`KV v2 mount ${mount} to accept writes`, 30_000, async () => {
    await baoOk(addr, 'POST', `${mount}/data/probe`, { token, body: { data: { v: 'x' } } });
    return true;
  });
  const perEntry = 512 * 1024;
  const count = Math.ceil((mib * 1024 * 1024) / perEntry);
  for (let i = 0; i < count; i += 4) {
    await Promise.all(
      Array.from({ length: Math.min(4, count - i) }, (_, j) =>
        baoOk(addr, 'POST', `${mount}/data/blob-${i + j}`, { token, body: { data: { v: randomBytes((perEntry * 3) / 4).toString('base64') } }, timeoutMs: 30_000 }),
      ),
    );
  }
  return async () => {
    await baoOk(addr, 'DELETE', `sys/mounts/${mount}`, { token, timeoutMs: 30_000 });
  };
}

export function lineWith(run: JobRun, msg: string): Record<string, unknown> | undefined {
  return run.lines.find((l) => l.msg === msg);
}

/** The stack nodes' seal stanza, verbatim: a fresh node with it uses the same KMS key. */
function sealStanza(stack: StackInfo): string {
  const hcl = readFileSync(stack.openbao.nodes[0]!.configFile, 'utf8');
  const m = /seal\s+"awskms"\s*\{[^}]*\}/s.exec(hcl);
  if (!m) throw new Error('no awskms seal stanza in the stack config');
  return m[0];
}

export interface FreshBao {
  api: string;
  rootToken: string;
  stop(): Promise<void>;
}

/**
 * A fresh single-node OpenBao (the real bao binary, integrated Raft, the stack's awskms seal),
 * initialised and active: a second, unrelated cluster. `clusterName` sets its cluster_name.
 */
export async function startFreshBao(opts: { apiPort: number; clusterPort: number; nodeId: string; clusterName?: string }, stack = readStack()): Promise<FreshBao> {
  const api = `http://127.0.0.1:${opts.apiPort}`;
  const dir = mkdtempSync(join(tmpdir(), `rs-${opts.nodeId}-`));
  writeFileSync(
    join(dir, 'config.hcl'),
    `api_addr = "${api}"
cluster_addr = "https://127.0.0.1:${opts.clusterPort}"
${opts.clusterName ? `cluster_name = "${opts.clusterName}"\n` : ''}storage "raft" {
  path    = "${join(dir, 'raft')}"
  node_id = "${opts.nodeId}"
}
listener "tcp" {
  address         = "127.0.0.1:${opts.apiPort}"
  cluster_address = "127.0.0.1:${opts.clusterPort}"
  tls_disable     = true
}
${sealStanza(stack)}
`,
  );
  mkdirSync(join(dir, 'raft'));
  const log = openSync(join(dir, 'bao.log'), 'a');
  const server = spawn(realBaoBinary(), ['server', `-config=${join(dir, 'config.hcl')}`], { detached: true, stdio: ['ignore', log, log], env: serverEnv() });
  const stop = async () => {
    try {
      if (server.pid) process.kill(-server.pid, 'SIGKILL');
    } catch {
      server.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('the fresh node to answer', 30_000, async () => (await baoApi(api, 'GET', 'sys/health')).status === 501);
    const init = await baoOk<{ root_token: string }>(api, 'PUT', 'sys/init', { body: { recovery_shares: 1, recovery_threshold: 1 } });
    await waitFor('the fresh node to become active', 60_000, async () => (await baoApi(api, 'GET', 'sys/health')).status === 200);
    return { api, rootToken: init.root_token, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
