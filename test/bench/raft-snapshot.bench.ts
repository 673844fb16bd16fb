// raft-snapshot against the common recipe, same stack, same run:
//   recipe = `bao operator raft snapshot save <file>` then `aws s3 cp <file> s3://...` (SSE-KMS)
//   job    = the bundled job (dist/raft-snapshot.mjs): stream, verify, upload, commit, retention
// on a cluster holding tens of MiB of real KV data: wall time and peak RSS of each.
// Then the job's streaming path alone on synthetic snapshots of growing size (64 MiB to 1 GiB):
// its peak RSS must stay flat (goal: under 150 MiB at 1 GiB), whatever the size.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client, ListObjectsV2Command, DeleteObjectsCommand } from '@aws-sdk/client-s3';
import { baoOk, waitFor } from '../stack/http.ts';
import { REPO_ROOT, which } from '../stack/layout.ts';
import { leaderIndex, mintServiceAccountToken, readStack, stackEnv } from '../stack/stack.ts';
import type { BenchRow } from './run.ts';

const MiB = 1024 * 1024;
/** Sizes of real KV data to measure at, growing (the data of one size stays for the next). */
const KV_MIB = (process.env.RS_BENCH_KV_MIB ?? '48,144').split(',').map(Number);
const RUNS = Number(process.env.RS_BENCH_RUNS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
const SIZES_MIB = (process.env.RS_BENCH_SIZES_MIB ?? '64,256,1024').split(',').map(Number);
/** What the CronJob sets (NODE_OPTIONS, helm values): see docs/raft-snapshot.md. */
const DEPLOYED_FLAGS = '--max-semi-space-size=1';

interface Measured {
  code: number;
  seconds: number;
  maxRssMiB: number;
  stdout: string;
}

/** Runs a command and reports its wall time and the peak RSS of it and its children (getrusage). */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Measured> {
  const py = `
import json, resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)
sys.stderr.write(json.dumps({"code": p.returncode, "seconds": time.monotonic() - t,
  "maxRssMiB": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}) + "\\n")
sys.stdout.buffer.write(p.stdout)
`;
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', py, cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', () => {
      const line = err.trim().split('\n').at(-1) ?? '';
      try {
        resolve({ ...(JSON.parse(line) as Omit<Measured, 'stdout'>), stdout: out });
      } catch {
        reject(new Error(`${cmd} failed: ${err.slice(-2000)}`));
      }
    });
  });
}

async function emptyPrefix(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  const keys = (page.Contents ?? []).map((c) => ({ Key: c.Key! }));
  if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
}

export async function run(): Promise<BenchRow[]> {
  const stack = readStack();
  const env = { ...process.env, ...stackEnv(stack) };
  const bucket = stack.aws.buckets.snapshots;
  const prefix = `rs-bench-${randomBytes(3).toString('hex')}/`;
  const s3 = new S3Client({ region: stack.aws.region, endpoint: stack.aws.endpoint, forcePathStyle: true, credentials: { accessKeyId: stack.aws.accessKeyId, secretAccessKey: stack.aws.secretAccessKey } });
  const { addr, rootToken: token } = stack.openbao;
  const mount = `rs-bench-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'rs-bench-'));
  const rows: BenchRow[] = [];

  // Bundles: the job as it ships, and the streaming path alone.
  const bundler = join(REPO_ROOT, 'packages/runtime/bin/bundle.mjs');
  execFileSync(process.execPath, [bundler, 'src/main.ts', 'dist/raft-snapshot.mjs'], { cwd: join(REPO_ROOT, 'jobs/raft-snapshot'), stdio: 'ignore' });
  const pipeline = join(dir, 'pipeline.mjs');
  execFileSync(process.execPath, [bundler, join(REPO_ROOT, 'jobs/raft-snapshot/test/bench-pipeline.ts'), pipeline], { cwd: REPO_ROOT, stdio: 'ignore' });

  try {
    // Real data: random values (Vault stores ciphertext, which does not compress).
    await baoOk(addr, 'POST', `sys/mounts/${mount}`, { token, body: { type: 'kv', options: { version: '2' } } });
    await waitFor('KV mount', 30_000, async () => {
      await baoOk(addr, 'POST', `${mount}/data/probe`, { token, body: { data: { v: 'x' } } });
      return true;
    });
    const active = stack.openbao.nodes[await leaderIndex()]!.addr;
    const file = join(dir, 'recipe.snap');
    const tokenPath = join(dir, 'sa-token');
    const jobEnv: NodeJS.ProcessEnv = {
      ...env,
      VAULT_ADDR: active,
      VAULT_AUTH_ROLE: 'vaultkeeper-raft-snapshot',
      VAULT_AUTH_TOKEN_PATH: tokenPath,
      SNAPSHOT_S3_BUCKET: bucket,
      SNAPSHOT_S3_PREFIX: prefix,
      SNAPSHOT_CLUSTER: 'bench',
      SNAPSHOT_S3_FORCE_PATH_STYLE: 'true',
      SNAPSHOT_S3_KMS_KEY_ID: stack.aws.dataKey.alias,
    };
    delete jobEnv.VAULT_TOKEN;
    delete jobEnv.PUSHGATEWAY_URL;
    let uploader = 'aws s3 cp';
    let written = 0;
    for (const kvMib of KV_MIB) {
      for (; written < (kvMib * MiB) / (512 * 1024); written += 4) {
        const i = written;
        await Promise.all([0, 1, 2, 3].map((j) => baoOk(addr, 'POST', `${mount}/data/b${i + j}`, { token, body: { data: { v: randomBytes(384 * 1024).toString('base64') } }, timeoutMs: 30_000 })));
      }
      // The recipe, as an operator scripts it, and the job, bundled, logged in with Kubernetes
      // auth like the CronJob; alternated, RUNS times each, medians reported.
      let size = 0;
      const recipe: Array<{ seconds: number; rss: number; saveRss: number; uploadRss: number }> = [];
      const jobs: Measured[] = [];
      for (let i = 0; i < RUNS; i++) {
        const save = await measure(which('bao'), ['operator', 'raft', 'snapshot', 'save', file], { ...env, VAULT_ADDR: active, BAO_ADDR: active, VAULT_TOKEN: token, BAO_TOKEN: token });
        if (save.code !== 0) throw new Error('bao operator raft snapshot save failed');
        size = statSync(file).size;
        let upload: Measured | undefined;
        if (uploader === 'aws s3 cp') {
          upload = await measure(which('aws'), ['s3', 'cp', file, `s3://${bucket}/${prefix}recipe.snap`, '--sse', 'aws:kms', '--sse-kms-key-id', stack.aws.dataKey.alias, '--endpoint-url', stack.aws.endpoint, '--only-show-errors'], env).catch(() => undefined);
          if (!upload || upload.code !== 0) uploader = 'SDK upload';
        }
        if (uploader === 'SDK upload') {
          upload = await measure(process.execPath, [pipeline, 'upload-file', file], { ...env, BENCH_BUCKET: bucket, BENCH_PREFIX: prefix, BENCH_KMS_KEY: stack.aws.dataKey.alias });
        }
        recipe.push({ seconds: save.seconds + upload!.seconds, rss: Math.max(save.maxRssMiB, upload!.maxRssMiB), saveRss: save.maxRssMiB, uploadRss: upload!.maxRssMiB });
        rmSync(file, { force: true });

        writeFileSync(tokenPath, await mintServiceAccountToken('vaultkeeper', 'vaultkeeper-raft-snapshot', { audience: 'vault' }), { mode: 0o600 });
        const job = await measure(process.execPath, [...DEPLOYED_FLAGS.split(' '), join(REPO_ROOT, 'jobs/raft-snapshot/dist/raft-snapshot.mjs')], jobEnv);
        if (job.code !== 0) throw new Error(`the job failed: ${job.stdout.slice(-3000)}`);
        jobs.push(job);
      }
      const recipeSeconds = median(recipe.map((r) => r.seconds));
      const recipeRss = median(recipe.map((r) => r.rss));
      const job = { seconds: median(jobs.map((j) => j.seconds)), maxRssMiB: median(jobs.map((j) => j.maxRssMiB)) };
      const snap = `${(size / MiB).toFixed(0)} MiB snapshot`;
      const note = `median of ${RUNS}; ${kvMib} MiB of KV data; recipe = bao CLI save + ${uploader}; the job also verifies, commits and prunes`;
      rows.push({ name: `real ${snap}: wall time`, value: job.seconds, unit: 's', baseline: recipeSeconds, baselineName: 'recipe', note });
      rows.push({
        name: `real ${snap}: peak RSS`,
        value: job.maxRssMiB,
        unit: 'MiB',
        baseline: recipeRss,
        baselineName: 'recipe',
        note: `median of ${RUNS}; recipe: bao ${median(recipe.map((r) => r.saveRss)).toFixed(0)} MiB, ${uploader} ${median(recipe.map((r) => r.uploadRss)).toFixed(0)} MiB`,
      });
    }

    // The streaming path alone, growing inputs, read from another process as from Vault. Peak RSS
    // as deployed (NODE_OPTIONS, see DEPLOYED_FLAGS and docs/raft-snapshot.md) and, for the
    // largest input, with Node's default heap flags too.
    const pipe = (mib: number, flags: string) =>
      measure('sh', ['-c', `"$NODE" "$PIPE" gen ${mib * MiB} | "$NODE" ${flags} "$PIPE" synthetic-stdin`], {
        ...env,
        NODE: process.execPath,
        PIPE: pipeline,
        BENCH_BUCKET: bucket,
        BENCH_PREFIX: prefix,
        BENCH_KMS_KEY: stack.aws.dataKey.alias,
      }).then((m) => {
        if (m.code !== 0) throw new Error(`pipeline ${mib} MiB failed`);
        return JSON.parse(m.stdout.trim().split('\n').at(-1)!) as { bytes: number; seconds: number; maxRssMiB: number };
      });
    let first: number | undefined;
    const label = (mib: number) => (mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`);
    for (const mib of SIZES_MIB) {
      const r = await pipe(mib, DEPLOYED_FLAGS);
      first ??= r.maxRssMiB;
      rows.push({
        name: `stream+verify+upload ${label(mib)}: peak RSS`,
        value: r.maxRssMiB,
        unit: 'MiB',
        baseline: first,
        baselineName: `${label(SIZES_MIB[0]!)} input`,
        note: `${(r.bytes / MiB / r.seconds).toFixed(0)} MiB/s into moto; 8 MiB parts x 2 in flight${mib === 1024 ? '; goal < 150 MiB' : ''}`,
      });
    }
    const largest = SIZES_MIB.at(-1)!;
    const plain = await pipe(largest, '');
    rows.push({
      name: `stream+verify+upload ${label(largest)}: peak RSS, default V8 flags`,
      value: plain.maxRssMiB,
      unit: 'MiB',
      baseline: first,
      baselineName: `${label(SIZES_MIB[0]!)} input, as deployed`,
      note: 'without --max-semi-space-size=1 the young generation grows to its 16 MiB x 3 maximum',
    });
  } finally {
    await baoOk(addr, 'DELETE', `sys/mounts/${mount}`, { token, timeoutMs: 60_000 }).catch(() => undefined);
    await emptyPrefix(s3, bucket, prefix).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
