// The faults the job must survive, each made real: a leader killed mid-stream, S3 cut mid-upload,
// a snapshot damaged or cut in transit, and a second run while one is in progress. Every test
// checks that nothing partial is left: no object, no multipart upload, no staging object.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killLeader, leaderIndex, readStack, startNode, waitForHealthyCluster } from '../../../test/stack/stack.ts';
import { CuttableTcpProxy, VaultTamperProxy, type TamperMode } from './proxies.ts';
import { TestBucket, applyJobPolicy, fillKv, lineWith } from './stack-fixture.ts';

const stack = readStack();
let unmount: (() => Promise<void>) | undefined;

beforeAll(async () => {
  await applyJobPolicy();
  // ~16 MiB of random KV data: the snapshot is then a multipart upload (5 MiB parts) that takes a
  // few seconds to stream through a throttled f.proxy.
  unmount = await fillKv(`rs-faults-${process.pid}`, 16);
}, 300_000);

afterAll(async () => {
  await unmount?.();
});

/** Nothing of a failed run may remain. */
async function expectNothingLeft(t: TestBucket): Promise<void> {
  expect(await t.snapshots()).toEqual([]);
  expect(await t.uploads()).toEqual([]);
  expect((await t.keys()).filter((k) => !k.endsWith('/.lock'))).toEqual([]);
}

/**
 * One describe block's own key prefix and a tampering proxy in front of the Raft leader (started
 * before its tests, stopped and cleaned after them); `mode` is where the proxy starts.
 */
function behindVaultProxy(name: string, mode?: TamperMode): { t: TestBucket; readonly proxy: VaultTamperProxy } {
  const t = new TestBucket(name);
  let proxy: VaultTamperProxy | undefined;
  beforeAll(async () => {
    proxy = await new VaultTamperProxy(stack.openbao.nodes[await leaderIndex()]!.addr).start();
    if (mode) proxy.mode = mode;
  });
  afterAll(async () => {
    await proxy?.stop();
    await t.clean();
  });
  return {
    t,
    get proxy() {
      return proxy!;
    },
  };
}

describe('a snapshot damaged in transit is never committed', () => {
  const f = behindVaultProxy('tamper');
  const { t } = f;

  it.each<[string, TamperMode, string[]]>([
    ['a flipped byte', { kind: 'flip', offset: 200_000 }, ['gzip', 'tar-header-checksum', 'manifest-mismatch', 'truncated', 'tar-framing', 'unexpected-member']],
    ['a body cut short with a clean 200 ending', { kind: 'truncate', after: 3_000_000 }, ['truncated']],
    ['state.bin changed under valid gzip and tar framing', { kind: 'tamper-state' }, ['manifest-mismatch']],
    ['the sealed manifest removed', { kind: 'drop-sealed' }, ['missing-member']],
  ])('%s', async (_name, mode, checks) => {
    f.proxy.mode = mode;
    f.proxy.snapshotRequests = 0;
    const run = await t.run([], { VAULT_ADDR: f.proxy.url, SNAPSHOT_MAX_ATTEMPTS: '2' });
    expect(run.code, run.all).toBe(1);
    const failed = run.lines.find((l) => l.level === 'error' && typeof l.msg === 'string' && l.msg.startsWith('the snapshot failed verification'));
    expect(failed, run.all).toBeDefined();
    expect(checks).toContain(failed!.check);
    // Each attempt fetched a fresh snapshot, and each was caught.
    expect(f.proxy.snapshotRequests).toBe(2);
    expect(run.lines.filter((l) => l.msg === 'snapshot attempt failed; retrying from the start')).toHaveLength(1);
    await expectNothingLeft(t);
  });

  it('the same path with nothing damaged succeeds (the proxy itself is transparent)', async () => {
    f.proxy.mode = { kind: 'pass' };
    const run = await t.run([], { VAULT_ADDR: f.proxy.url });
    expect(run.code, run.all).toBe(0);
    expect(await t.snapshots()).toHaveLength(1);
    await t.clean();
  });
});

describe('S3 fails mid-upload', () => {
  // Slow enough that the upload is still under way when S3 goes.
  const f = behindVaultProxy('s3fault', { kind: 'throttle', bytesPerSecond: 3 * 1024 * 1024 });
  const { t } = f;
  let s3proxy: CuttableTcpProxy;
  beforeAll(async () => {
    s3proxy = await new CuttableTcpProxy(Number(new URL(stack.aws.endpoint).port)).start();
  });
  afterAll(async () => {
    await s3proxy.stop();
  });

  /** Runs the job through both proxies; `fault` runs once the first part is on its way to S3. */
  async function runWithS3Fault(idleLimit: string, fault: () => void, onLine?: (line: string) => void) {
    let faultAt = 0;
    const run = await t.run([], { VAULT_ADDR: f.proxy.url, AWS_ENDPOINT_URL: s3proxy.url, SNAPSHOT_S3_REQUEST_TIMEOUT: idleLimit }, {
      onLine: (line) => {
        if (!faultAt && line.includes('"snapshot stream started"')) {
          const started = s3proxy.bytesUp;
          const timer = setInterval(() => {
            if (s3proxy.bytesUp - started > 5 * 1024 * 1024) {
              clearInterval(timer);
              faultAt = Date.now();
              fault();
            }
          }, 20);
        }
        onLine?.(line);
      },
    });
    expect(faultAt).toBeGreaterThan(0);
    expect(run.code, run.all).toBe(1);
    expect(run.summary!.outcome).toBe('failure');
    const failed = run.lines.find((l) => l.level === 'error' && String(l.msg).endsWith('nothing was stored'));
    expect(failed, run.all).toBeDefined();
    expect(failed!.check).toBe('s3-upload');
    expect(lineWith(run, 'snapshot discarded: no multipart upload, object or record left'), run.all).toBeDefined();
    await expectNothingLeft(t);
    // The lock was released too, so the next run is not blocked.
    expect((await t.keys()).filter((k) => k.endsWith('.lock'))).toEqual([]);
    return { run, failed: failed!, faultAt };
  }

  it('unreachable (connections reset, then refused): aborts the multipart upload, stores nothing and exits 1', async () => {
    // Back a few seconds later (long enough for the SDK's own retries to give up), as after a network blip.
    await runWithS3Fault('5s', () => {
      s3proxy.cut();
      setTimeout(() => s3proxy.restore(), 6_000);
    });
  });

  it('silent (connections open, nothing answers): each request is abandoned after the idle limit', async () => {
    let failedAt = 0;
    const { failed, faultAt } = await runWithS3Fault(
      '2s',
      () => s3proxy.stall(),
      (line) => {
        // Once the upload has given up, S3 comes back, so that the cleanup can be checked too.
        if (!failedAt && line.includes('"the upload failed; discarding it"')) {
          failedAt = Date.now();
          s3proxy.restore();
        }
      },
    );
    expect(String(failed.msg)).toMatch(/timed out after 2000 ms of inactivity/);
    // Bounded by the idle limit: the SDK's attempts at a part (2 s of silence each) and its backoff.
    expect(failedAt - faultAt).toBeGreaterThan(0);
    expect(failedAt - faultAt).toBeLessThan(45_000);
  }, 120_000);
});

describe('the Raft leader killed mid-stream', () => {
  const f = behindVaultProxy('leaderkill');
  const { t } = f;
  let killed: number | undefined;
  afterAll(async () => {
    // Put the cluster back as it was for everyone else.
    if (killed !== undefined) await startNode(killed, 90_000);
    await waitForHealthyCluster(3, 120_000);
  }, 240_000);

  it('retries from the start on the new leader; one object, no orphaned upload', async () => {
    const leader = await leaderIndex();
    f.proxy.upstream = stack.openbao.nodes[leader]!.addr;
    f.proxy.mode = { kind: 'throttle', bytesPerSecond: 2 * 1024 * 1024 };
    const others = stack.openbao.nodes.filter((n) => n.index !== leader).map((n) => n.addr);
    const run = await t.run([], { VAULT_ADDR: f.proxy.url, VAULT_FALLBACK_ADDRS: others.join(','), VAULT_REQUEST_TIMEOUT: '10s' }, {
      onLine: (line) => {
        if (killed === undefined && line.includes('"snapshot stream started"')) {
          killed = -1;
          setTimeout(() => void killLeader().then((i) => (killed = i)), 1_500);
        }
      },
    });
    expect(killed).toBe(leader);
    expect(run.code, run.all).toBe(0);
    const s = run.summary!;
    expect(s.attempts).toBeGreaterThanOrEqual(2);
    expect(s.node).not.toBe(stack.openbao.nodes[leader]!.addr);
    expect(lineWith(run, 'snapshot attempt failed; retrying from the start')).toBeDefined();
    expect(await t.snapshots()).toEqual([s.key]);
    expect(await t.uploads()).toEqual([]);
    // The snapshot, its record and the marker of the first format-3 snapshot (records clusterScope).
    expect((await t.keys()).sort()).toEqual([s.key, `${String(s.key)}.json`, `${await t.ownPrefix()}.format-3-since`].sort());
    const verify = await t.run(['verify']);
    expect(verify.code, verify.all).toBe(0);
  }, 180_000);
});

describe('a second run while one is in progress', () => {
  const f = behindVaultProxy('overlap', { kind: 'throttle', bytesPerSecond: 4 * 1024 * 1024 });
  const { t } = f;

  it('does not interleave: it refuses, or waits for the first and keeps its object', async () => {
    const slow = { VAULT_ADDR: f.proxy.url };
    let second: Promise<Awaited<ReturnType<TestBucket['run']>>> | undefined;
    let waiting: Promise<Awaited<ReturnType<TestBucket['run']>>> | undefined;
    const first = await t.run([], slow, {
      onLine: (line) => {
        if (!second && line.includes('"snapshot stream started"')) {
          second = t.run([], { SNAPSHOT_KEEP_LAST: '1', SNAPSHOT_KEEP_DAILY: '0', SNAPSHOT_KEEP_WEEKLY: '0', SNAPSHOT_KEEP_MONTHLY: '0' });
          waiting = t.run([], { SNAPSHOT_LOCK_WAIT: '120s' });
        }
      },
    });
    expect(first.code, first.all).toBe(0);
    const refused = await second!;
    expect(refused.code, refused.all).toBe(1);
    const err = refused.lines.find((l) => l.check === 'lock');
    expect(err?.msg).toBe('another snapshot run of this cluster is in progress; not starting a second one');
    expect(refused.lines.some((l) => l.msg === 'snapshot stream started')).toBe(false);
    const waited = await waiting!;
    expect(waited.code, waited.all).toBe(0);
    expect(lineWith(waited, 'waiting for the running snapshot to finish')).toBeDefined();
    // Both objects are there: neither run pruned or replaced the other's.
    expect((await t.snapshots()).sort()).toEqual([first.summary!.key, waited.summary!.key].sort());
  }, 180_000);
});

describe('a failure after the upload completed, before the record', () => {
  const t = new TestBucket('commitfail');
  afterAll(async () => {
    await t.clean();
  });

  it('discards the completed snapshot: nothing is left that could pass for a backup', async () => {
    let planted = '';
    const run = await t.run([], {}, {
      onLine: (line) => {
        // Another writer takes the record's name first: the job's conditional write of its record
        // (If-None-Match: *) is refused after CompleteMultipartUpload has made the snapshot visible.
        if (!planted && line.includes('"snapshot stream started"')) {
          planted = `${String((JSON.parse(line) as { key: string }).key)}.json`;
          void t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: planted, Body: '{}' }));
        }
      },
    });
    expect(planted).not.toBe('');
    expect(run.code, run.all).toBe(1);
    const failed = run.lines.find((l) => l.level === 'error' && l.check === 'commit');
    expect(String(failed?.msg), run.all).toMatch(/could not write the record of .*nothing was stored$/);
    expect(lineWith(run, 'snapshot discarded: no multipart upload, object or record left'), run.all).toBeDefined();
    await expectNothingLeft(t);
  });
});

describe('SIGTERM mid-stream', () => {
  const f = behindVaultProxy('sigterm', { kind: 'throttle', bytesPerSecond: 2 * 1024 * 1024 });
  const { t } = f;

  it('aborts the upload, releases the lock, revokes the token and exits 1 inside the grace period', async () => {
    let signalledAt = 0;
    const run = await t.run([], { VAULT_ADDR: f.proxy.url, VAULTKEEPER_SHUTDOWN_GRACE: '20s' }, {
      onLine: (line, child) => {
        if (!signalledAt && line.includes('"snapshot stream started"')) {
          setTimeout(() => {
            signalledAt = Date.now();
            child.kill('SIGTERM');
          }, 2_000);
        }
      },
    });
    expect(signalledAt).toBeGreaterThan(0);
    expect(run.code, run.all).toBe(1);
    expect(lineWith(run, 'stopping: aborting in-flight work and cleaning up')).toBeDefined();
    expect(lineWith(run, 'snapshot discarded: no multipart upload, object or record left')).toBeDefined();
    expect(lineWith(run, 'lock released')).toBeDefined();
    expect(lineWith(run, 'login token revoked')).toBeDefined();
    expect(run.lines.some((l) => l.msg === 'snapshot attempt failed; retrying from the start')).toBe(false);
    await expectNothingLeft(t);
    expect((await t.keys()).filter((k) => k.endsWith('.lock'))).toEqual([]);
  }, 120_000);
});

describe('timeouts fit large snapshots', () => {
  const f = behindVaultProxy('timeouts');
  const { t } = f;

  it('a stream that keeps flowing may take far longer than the idle timeout', async () => {
    f.proxy.mode = { kind: 'throttle', bytesPerSecond: 3 * 1024 * 1024 };
    const run = await t.run([], { VAULT_ADDR: f.proxy.url, VAULT_REQUEST_TIMEOUT: '2s' });
    expect(run.code, run.all).toBe(0);
    expect(run.summary!.attempts).toBe(1);
    // Several times the idle timeout, in one attempt.
    expect(Number(run.summary!.durationSeconds)).toBeGreaterThan(4);
    await t.clean();
  });

  it('a stream that goes silent is abandoned after the idle timeout, and nothing is stored', async () => {
    f.proxy.mode = { kind: 'stall', after: 6 * 1024 * 1024 };
    const run = await t.run([], { VAULT_ADDR: f.proxy.url, VAULT_REQUEST_TIMEOUT: '3s', SNAPSHOT_MAX_ATTEMPTS: '2' });
    expect(run.code, run.all).toBe(1);
    const retried = run.lines.find((l) => l.msg === 'snapshot attempt failed; retrying from the start');
    expect(JSON.stringify(retried?.err)).toContain('ETIMEDOUT');
    // Two attempts, each abandoned after 3 s of silence.
    expect(Number(run.summary!.durationSeconds)).toBeGreaterThanOrEqual(6);
    await expectNothingLeft(t);
  });
});
