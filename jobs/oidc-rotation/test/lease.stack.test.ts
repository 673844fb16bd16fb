// The claim's lease on the rotation record, against the real OpenBao: lapse is judged by Vault's
// clock (the version's created_time and sys/health's time), never by the holder's expiresAt; a
// renewal whose answer was lost does not cost the claim; renewals keep a live claim. Driven by
// what the real KV record shows (its versions), not by sleeps.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { createLogger } from '@vaultkeeper/runtime';
import { VaultClient } from '@vaultkeeper/vault';
import { afterEach, describe, expect, it } from 'vitest';
import { baoRequest } from '../../../test/stack/http.ts';
import { readStack } from '../../../test/stack/stack.ts';
import { listenOnLoopback } from '../../../test/support/loopback.ts';
import { RecordBusyError, RotationRecordStore, type RotationRecord } from '../src/rotation-record.ts';
import { activeVaultAddr, rootVault } from './testbed.ts';

const silent = createLogger({ job: 'oidc-rotation-test', level: 'silent' });
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

function body(lock: RotationRecord['lock']): Omit<RotationRecord, 'writeId'> {
  return {
    schema: 1,
    mount: 'oidc',
    clientId: 'client',
    providerPk: 1,
    application: 'app',
    fingerprintKey: 'key',
    current: null,
    previous: null,
    pending: null,
    lock,
    lastChange: null,
    externalChanges: [],
  };
}
const initial = (() => {
  const { lock: _l, ...rest } = body(null);
  return rest;
})();

async function recordPath(): Promise<{ path: string; root: VaultClient }> {
  const path = `vaultkeeper/oidc-rotation/lease-test-${randomBytes(4).toString('hex')}`;
  const root = await rootVault();
  cleanups.push(async () => {
    await root.delete(`secret/metadata/${path}`);
    root.close();
  });
  return { path, root };
}

/** Vault's time (whole seconds) and the record's version with its created_time, both from Vault. */
async function vaultNow(root: VaultClient): Promise<number> {
  const res = await root.call('sys/health', { acceptStatus: [429, 472, 473, 501, 503] });
  return (res.body as { server_time_utc: number }).server_time_utc * 1000;
}
async function version(root: VaultClient, path: string): Promise<{ version: number; createdAt: number }> {
  const res = (await root.read(`secret/data/${path}`)) as { metadata: { version: number; created_time: string } };
  return { version: res.metadata.version, createdAt: Date.parse(res.metadata.created_time) };
}
async function until<T>(what: string, fn: () => Promise<T | undefined>, limitMs = 60_000): Promise<T> {
  // A bound on how long to look, not a timing assertion: the condition is an event in Vault.
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function store(vault: VaultClient, path: string): RotationRecordStore {
  return new RotationRecordStore(vault, 'secret', path, undefined, silent);
}

describe('the claim on the rotation record', () => {
  it("is not taken over while its last renewal is younger than the lease on Vault's clock, though the holder's clock says it expired", async () => {
    const { path, root } = await recordPath();
    // A holder whose clock runs 20 minutes behind just renewed: its expiresAt is in the past.
    const behind = Date.now() - 20 * 60_000;
    await root.write(`secret/data/${path}`, {
      options: { cas: 0 },
      data: { ...body({ holder: 'other-run', acquiredAt: new Date(behind).toISOString(), expiresAt: new Date(behind + 60_000).toISOString(), leaseSeconds: 60 }), writeId: 'w1' },
    });
    const taker = store(root, path);
    await expect(taker.acquire(await taker.read(), initial, 60)).rejects.toBeInstanceOf(RecordBusyError);
    expect((await taker.read()).data?.lock?.holder).toBe('other-run');
  });

  it("is taken over once its version is older than its lease on Vault's clock, though the holder's clock says it runs for hours", async () => {
    const { path, root } = await recordPath();
    const ahead = Date.now() + 3 * 3600_000;
    await root.write(`secret/data/${path}`, {
      options: { cas: 0 },
      data: { ...body({ holder: 'other-run', acquiredAt: new Date(ahead).toISOString(), expiresAt: new Date(ahead + 60_000).toISOString(), leaseSeconds: 1 }), writeId: 'w1' },
    });
    const { createdAt } = await version(root, path);
    // Wait for Vault's clock (not ours) to pass the lease.
    await until('Vault time past the lease', async () => ((await vaultNow(root)) > createdAt + 2000 ? true : undefined));
    const taker = store(root, path);
    const claimed = await taker.acquire(await taker.read(), initial, 600);
    expect(claimed.data.lock).toMatchObject({ holder: taker.runId, leaseSeconds: 600 });
    await taker.releaseIfHeld();
  });

  it("keeps a live holder's claim by renewals: after more than a whole lease of renewals, another run is refused", async () => {
    const { path, root } = await recordPath();
    const holder = store(root, path);
    const claimed = await holder.acquire(await holder.read(), initial, 6);
    // Four renewals (one every 2 s) span more than the 6 s lease: only they keep the claim alive.
    await until('four renewals in the record', async () => ((await version(root, path)).version >= claimed.version + 4 ? true : undefined));
    const taker = store(root, path);
    await expect(taker.acquire(await taker.read(), initial, 6)).rejects.toBeInstanceOf(RecordBusyError);
    expect(() => holder.assertHeld(1)).not.toThrow();
    expect(await holder.releaseIfHeld()).toBe(true);
    expect((await taker.read()).data?.lock).toBeNull();
  });

  it('refuses a change whose call could outlast the lease left', async () => {
    const { path, root } = await recordPath();
    const holder = store(root, path);
    await holder.acquire(await holder.read(), initial, 600);
    expect(() => holder.assertHeld(60)).not.toThrow();
    // A call that may take longer than the whole lease must not start: the lease could lapse inside it.
    expect(() => holder.assertHeld(600)).toThrow(RecordBusyError);
    await holder.releaseIfHeld();
  });

  it("survives a renewal whose answer was lost (and whose look-up failed): the record's newer version is the run's own", async () => {
    const { path } = await recordPath();
    const proxy = await new LosingProxy(await activeVaultAddr(), `/v1/secret/data/${path}`).start();
    cleanups.push(() => proxy.stop());
    const vault = new VaultClient(
      { address: proxy.url, fallbackAddresses: [], allowInsecureHttp: false, auth: { mount: 'kubernetes', tokenPath: '' }, requestTimeoutSeconds: 10, callDeadlineSeconds: 3 },
      silent,
    );
    vault.setToken(readStack().openbao.rootToken, false);
    cleanups.push(async () => vault.close());
    const holder = store(vault, path);
    const claimed = await holder.acquire(await holder.read(), initial, 600);

    proxy.losing = true; // the renewal lands, its answer and the look-up after it do not come back
    await holder.renewNow();
    proxy.losing = false;
    expect(proxy.lost, 'the renewal reached Vault').toBeGreaterThan(0);
    await holder.renewNow(); // check-and-set on the version before: mismatch, by our own write
    const mid = await holder.read();
    expect(mid.version).toBeGreaterThan(claimed.version);
    expect(mid.data?.lock?.holder).toBe(holder.runId);
    // The claim is still this run's: a step's write and the release go through.
    expect(() => holder.assertHeld(60)).not.toThrow();
    await holder.renewNow();
    expect((await holder.read()).version).toBeGreaterThan(mid.version);
    expect(await holder.releaseIfHeld()).toBe(true);
    expect((await holder.read()).data?.lock).toBeNull();
  });
});

/**
 * In front of the real active node. While `losing`: a write to `path` is forwarded and lands,
 * but the connection is cut before its answer comes back; reads of `path` are cut unforwarded.
 */
class LosingProxy {
  losing = false;
  lost = 0;
  url = '';
  private readonly server: http.Server;
  constructor(
    private readonly upstream: string,
    private readonly path: string,
  ) {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }
  async start(): Promise<this> {
    this.url = await listenOnLoopback(this.server);
    return this;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
  }
  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const mine = (req.url ?? '').split('?')[0] === this.path;
    if (this.losing && mine && req.method === 'GET') {
      req.socket.destroy();
      return;
    }
    const target = new URL(req.url ?? '/', this.upstream);
    // Plain http in front (loopback), the node's TLS behind it, checked as the stack's scripts do.
    const up = baoRequest(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (upRes) => {
      if (this.losing && mine && req.method !== 'GET') {
        this.lost++;
        upRes.resume();
        upRes.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
  }
}
