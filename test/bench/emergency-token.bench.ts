// emergency-token: what envelope encryption and the full rotation protocol cost, each beside a
// baseline measured in the same run against the same servers (moto S3/KMS, the OpenBao cluster).
//  - deliver + read back through the S3 envelope sink (KMS GenerateDataKey, AES-256-GCM, SSE-KMS
//    PutObject, GetObject, KMS Decrypt) vs a plain PutObject + GetObject of the same bytes;
//  - a forced rotation run (create, record, deliver, read back, prove, revoke, record) vs a run
//    that skips (login, read the record, look the credential up, read the sink, logout), both as
//    the job measures itself (the summary's durationSeconds), so process start-up is left out.
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, DeleteObjectsCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { bootstrapEmergencyToken, noteAccessors, readState, revokeAll, runEmergencyToken, scenario, awsClients } from '../../jobs/emergency-token/test/stack-fixture.ts';
import { fingerprint } from '../../jobs/emergency-token/src/fingerprint.ts';
import { S3EnvelopeSink } from '../../jobs/emergency-token/src/sinks/s3-envelope.ts';
import type { BreakGlassCredential } from '../../jobs/emergency-token/src/credential.ts';
import { readStack } from '../stack/stack.ts';
import type { BenchRow } from './run.ts';

const SINK_ROUNDS = 25;
const RUNS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function sinkRows(): Promise<BenchRow[]> {
  const { s3, kms } = awsClients();
  const bucket = readStack().aws.buckets.breakglass;
  const key = `emergency-token/bench/${randomUUID()}.json`;
  const sink = new S3EnvelopeSink(s3, kms, { bucket, key, kmsKeyId: 'alias/vaultkeeper-data', encryptionContext: { cluster: 'bench', clusterId: 'bench', purpose: 'vaultkeeper-breakglass' } });
  const secret = 's.' + randomUUID().replace(/-/g, '');
  const credential: BreakGlassCredential = {
    kind: 'launcher',
    secret,
    accessor: 'bench',
    createdAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    fingerprint: fingerprint(secret),
    vaultAddress: 'http://127.0.0.1:18201',
    mintWith: 'breakglass-admin',
    purpose: 'bench',
    rotatedBy: 'bench',
    runId: 'bench',
  };
  const body = JSON.stringify(credential);
  const plain: number[] = [];
  const envelope: number[] = [];
  try {
    for (let i = 0; i < SINK_ROUNDS; i++) {
      let t = performance.now();
      const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${key}.plain`, Body: body }));
      await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${key}.plain`, VersionId: put.VersionId }))).Body!.transformToString();
      plain.push(performance.now() - t);
      t = performance.now();
      const d = await sink.deliver(credential);
      await sink.readBack(d);
      envelope.push(performance.now() - t);
    }
  } finally {
    // Leave no bench objects behind in the shared bucket (versioned: delete every version).
    for (const k of [key, `${key}.plain`]) {
      const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: k }));
      const objects = (versions.Versions ?? []).map((v) => ({ Key: v.Key!, VersionId: v.VersionId! }));
      if (objects.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects } }));
    }
    s3.destroy();
    kms.destroy();
  }
  const base = median(plain);
  return [
    { name: 'plain S3 put + get', value: base, unit: 'ms', note: `median of ${SINK_ROUNDS}` },
    { name: 'envelope deliver + read back', value: median(envelope), unit: 'ms', baseline: base, baselineName: 'plain put + get', note: 'KMS data key, AES-256-GCM, SSE-KMS, KMS decrypt' },
  ];
}

async function runRows(): Promise<BenchRow[]> {
  await bootstrapEmergencyToken();
  const s = scenario('bench');
  const skip: number[] = [];
  const rotate: number[] = [];
  try {
    const first = await runEmergencyToken(s);
    if (first.code !== 0) throw new Error(`first rotation failed: ${first.all.slice(-500)}`);
    noteAccessors(await readState(s));
    for (let i = 0; i < RUNS; i++) {
      const sk = await runEmergencyToken(s);
      if (sk.code !== 0) throw new Error(`skip run failed: ${sk.all.slice(-500)}`);
      skip.push(Number(sk.summary?.durationSeconds) * 1000);
      const ro = await runEmergencyToken(s, ['--force']);
      if (ro.code !== 0) throw new Error(`forced run failed: ${ro.all.slice(-500)}`);
      noteAccessors(await readState(s));
      rotate.push(Number(ro.summary?.durationSeconds) * 1000);
    }
  } finally {
    await revokeAll();
  }
  const base = median(skip);
  return [
    { name: 'run that skips (young credential)', value: base, unit: 'ms', note: `median of ${RUNS}, in-process` },
    { name: 'forced rotation run', value: median(rotate), unit: 'ms', baseline: base, baselineName: 'skip run', note: `median of ${RUNS}, in-process` },
  ];
}

export async function run(): Promise<BenchRow[]> {
  return [...(await sinkRows()), ...(await runRows())];
}
