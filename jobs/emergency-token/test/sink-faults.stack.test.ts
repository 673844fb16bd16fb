// The sink always holds a working credential, even when S3 took a delivery but the job never
// heard so: the job talks to the real moto S3 through the fault proxy, which forwards the PUT
// (so the new version lands) and drops the answer. Without the answer the job has no version id
// to take back; the SDK may have retried and landed more copies; SIGTERM may have cut the wait.
import type { ChildProcess } from 'node:child_process';
import { HeadObjectCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from '@vaultkeeper/runtime';
import { readStack } from '../../../test/stack/stack.ts';
import { findPlantedSecrets, type JobRun } from '../../../test/support/run-job.ts';
import { S3FaultProxy } from '../../raft-snapshot/test/proxies.ts';
import {
  createdAccessor,
  awsClients,
  bootstrapEmergencyToken,
  clientWith,
  noteAccessors,
  readState,
  revokeAll,
  runEmergencyToken,
  scenario,
  sinkHolds,
  tokenAlive,
  type Scenario,
} from './stack-fixture.ts';

const seen: Record<string, string> = {};
let proxy: S3FaultProxy;

beforeAll(async () => {
  await bootstrapEmergencyToken();
  proxy = await new S3FaultProxy(readStack().aws.endpoint).start();
});

afterAll(async () => {
  await proxy?.stop();
  await revokeAll();
});

async function rotateDirect(s: Scenario): Promise<void> {
  const run = await runEmergencyToken(s);
  expect(run.code, run.all).toBe(0);
  noteAccessors(await readState(s));
  const held = (await sinkHolds(s))!;
  seen[`launcher ${held.accessor}`] = held.secret;
}

/** Every version of the scenario's object, newest first, with the accessor its metadata names. */
async function versions(s: Scenario): Promise<Array<{ versionId: string; isLatest: boolean; accessor: string | undefined }>> {
  const { s3 } = awsClients();
  const Bucket = readStack().aws.buckets.breakglass;
  try {
    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: s.s3Key }));
    const out = [];
    for (const v of (listed.Versions ?? []).filter((v) => v.Key === s.s3Key)) {
      const head = await s3.send(new HeadObjectCommand({ Bucket, Key: s.s3Key, VersionId: v.VersionId }));
      out.push({ versionId: v.VersionId!, isLatest: Boolean(v.IsLatest), accessor: head.Metadata?.accessor });
    }
    return out;
  } finally {
    s3.destroy();
  }
}

/** The credential reveal would show now works: it looks itself up and may mint admin tokens. */
async function sinkCredentialWorks(s: Scenario): Promise<string> {
  const held = (await sinkHolds(s))!;
  const c = await clientWith(held.secret);
  try {
    const self = z.looseObject({ accessor: z.string() }).parse(await c.read('auth/token/lookup-self'));
    const caps = z.looseObject({ capabilities: z.array(z.string()) }).parse(await c.write('sys/capabilities-self', { paths: ['auth/token/create/breakglass-admin'] }));
    expect(caps.capabilities).toEqual(expect.arrayContaining(['update']));
    return self.accessor;
  } finally {
    c.close();
  }
}


describe('a delivery that landed without the job knowing', () => {
  it('every PUT lands but no answer comes back (the SDK retries): rollback finds the copies by the versions, the sink holds the old, working credential', async () => {
    const s = scenario('lost-answer');
    await rotateDirect(s);
    const old = await readState(s);
    proxy.faults = { loseAnswer: (op, key) => op === 'PutObject' && key === s.s3Key };
    proxy.lost.length = 0;
    let run: JobRun;
    try {
      run = await runEmergencyToken(s, ['--force'], { env: { AWS_ENDPOINT_URL: proxy.url } });
    } finally {
      proxy.faults = {};
    }
    noteAccessors(await readState(s));
    expect(run.code, run.all).toBe(1);
    const fresh = createdAccessor(run);
    expect(proxy.lost.length, 'the PUT reached moto, and the SDK tried again').toBeGreaterThanOrEqual(2);
    expect(await tokenAlive(fresh)).toBe(false);
    expect(await tokenAlive(old.accessor!)).toBe(true);

    const after = await versions(s);
    expect(after.filter((v) => v.accessor === fresh), 'no copy of the revoked credential is left').toEqual([]);
    expect(after.find((v) => v.isLatest)?.accessor).toBe(old.accessor);
    expect(await sinkCredentialWorks(s)).toBe(old.accessor);
    expect(await readState(s)).toMatchObject({ accessor: old.accessor, fingerprint: old.fingerprint });
    expect(findPlantedSecrets(run.all, seen)).toEqual([]);
  });

  it('without s3:ListBucketVersions (a policy from before), a landed PUT whose answer was lost is still taken back: the sink holds the old, working credential', async () => {
    const s = scenario('no-list-versions');
    await rotateDirect(s);
    const old = await readState(s);
    proxy.faults = { deny: ['ListObjectVersions'], loseAnswer: (op, key) => op === 'PutObject' && key === s.s3Key };
    proxy.lost.length = 0;
    proxy.refused.length = 0;
    let run: JobRun;
    try {
      run = await runEmergencyToken(s, ['--force'], { env: { AWS_ENDPOINT_URL: proxy.url } });
    } finally {
      proxy.faults = {};
    }
    noteAccessors(await readState(s));
    expect(run.code, run.all).toBe(1);
    const fresh = createdAccessor(run);
    expect(proxy.lost.length, 'the PUT reached moto').toBeGreaterThanOrEqual(1);
    expect(await tokenAlive(fresh)).toBe(false);
    const after = await versions(s);
    expect(after.filter((v) => v.accessor === fresh), 'no copy of the revoked credential is left').toEqual([]);
    expect(after.find((v) => v.isLatest)?.accessor).toBe(old.accessor);
    expect(await sinkCredentialWorks(s)).toBe(old.accessor);
    expect(findPlantedSecrets(run.all, seen)).toEqual([]);
  });

  it('SIGTERM while the PUT that landed waits for its answer: the copy is taken back, the old credential stays current', async () => {
    const s = scenario('sigterm-put');
    await rotateDirect(s);
    const old = await readState(s);
    let child: ChildProcess | undefined;
    proxy.faults = {
      loseAnswer: (op, key) => {
        if (op !== 'PutObject' || key !== s.s3Key) return false;
        child?.kill('SIGTERM');
        return true;
      },
    };
    let run: JobRun;
    try {
      run = await runEmergencyToken(s, ['--force'], { env: { AWS_ENDPOINT_URL: proxy.url }, onStart: (c) => (child = c) });
    } finally {
      proxy.faults = {};
    }
    noteAccessors(await readState(s));
    expect(run.code, run.all).toBe(1);
    const fresh = createdAccessor(run);
    expect(await tokenAlive(fresh)).toBe(false);
    const after = await versions(s);
    expect(after.filter((v) => v.accessor === fresh)).toEqual([]);
    expect(await sinkCredentialWorks(s)).toBe(old.accessor);
    expect(findPlantedSecrets(run.all, seen)).toEqual([]);
  });
});
