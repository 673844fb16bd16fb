// The sweep against the real local stack: a kube-apiserver holding Secrets of every class, a
// real Helm release, `kubectl apply`-ed Secrets, pods and service accounts; OpenBao holding the
// migrated values. The job runs as a process, logs in to Vault with its own role, and talks to
// the apiserver as its own service account with only the chart's RBAC rules.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Secret } from '@kubernetes/client-node';
import { createLogger } from '@vaultkeeper/runtime';
import { connectVault } from '@vaultkeeper/vault';
import { stackVaultConfig } from '../../../test/support/vault-client.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl, mintServiceAccountToken, readStack } from '../../../test/stack/stack.ts';
import { findPlantedSecrets, runJobProcess, type JobRun } from '../../../test/support/run-job.ts';
import { connectKube } from '../src/kube.ts';
import { listPages, type FetchPage } from '../src/list-secrets.ts';
import { deleteExactly, remediate } from '../src/remediate.ts';
import type { SecretEntry, SweepReport } from '../src/report.ts';
import { adminKube, cleanupAll, kvGet, kvPurge, sweepKubeconfig, uniquePrefix } from './fixtures.ts';
import { createSweepFixture, dropSweepFixture, type SweepFixture } from './sweep-fixture.ts';

const prefix = uniquePrefix('sweep');
let fx: SweepFixture;
let nsA: string;
let nsB: string;
// Only for the list tests: outside the namespaces the job sweeps.
let nsC: string;
let kvBase: string;
let binary: Buffer;
// Every value the cluster or Vault holds in this test; none may appear in any output.
let V: Record<string, string>;
const backupPath = `vaultkeeper/secret-sweep/backup/${prefix}`;
const { core } = adminKube();
let kube: { kubeconfig: string; cleanup: () => Promise<void> };
const originals = new Map<string, V1Secret>();
const workDir = mkdtempSync(join(tmpdir(), 'vk-sweep-test-'));

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    KUBECONFIG: kube.kubeconfig,
    SWEEP_NAMESPACES: `${nsA},${nsB}`,
    SWEEP_KV_SOURCES: `secret:${kvBase}`,
    SWEEP_BACKUP_PATH: backupPath,
    SWEEP_IGNORE_NAMES: `${nsB}/keep-*`,
    // The stack is shared with tests that stop nodes: know all three, as a deployment would.
    VAULT_FALLBACK_ADDRS: readStack().openbao.nodes.slice(1).map((n) => n.addr).join(','),
    ...extra,
  };
}

async function sweep(args: string[], extra: Record<string, string> = {}): Promise<{ run: JobRun; report: SweepReport; text: string }> {
  const file = join(workDir, `report-${Date.now()}.json`);
  const jobRun = await runJobProcess({ job: 'secret-sweep', args: [...args, '--report-file', file], env: env(extra) });
  const text = readFileSync(file, 'utf8');
  return { run: jobRun, report: JSON.parse(text) as SweepReport, text };
}

function entry(report: SweepReport, ns: string, name: string): SecretEntry {
  const e = report.secrets.find((s) => s.namespace === ns && s.name === name);
  if (!e) throw new Error(`no report entry for ${ns}/${name}`);
  return e;
}

beforeAll(async () => {
  fx = await createSweepFixture(prefix);
  ({ nsA, nsB, nsC, kvBase, binary } = fx);
  V = fx.values;
  kube = await sweepKubeconfig([nsA, nsB], `${prefix}-sweep`, {
    remediation: true,
    // The restore command creates the Secret again; the chart grants it only `delete`.
    extraRules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['create'] }],
  });
  for (const ns of [nsA, nsB]) for (const s of (await core.listNamespacedSecret({ namespace: ns })).items) originals.set(`${ns}/${s.metadata!.name}`, s);
});

afterAll(async () => {
  await cleanupAll([
    async () => kube?.cleanup(),
    async () => (fx ? dropSweepFixture(fx) : dropSweepFixture({ nsA: `${prefix}-a`, nsB: `${prefix}-b`, nsC: `${prefix}-c`, kvBase: `sweep-test/${prefix}/` })),
    () => kvPurge(`${backupPath}/`),
  ]);
});

describe('secret-sweep against the local stack', () => {
  it('starts a list over when the apiserver answers 410 Gone to an expired continue token', async () => {
    const log = createLogger({ job: 'secret-sweep', level: 'silent' });
    const k = connectKube({ kubeconfig: readStack().kube.kubeconfig, requestDeadlineSeconds: 30 }, log);
    // The watch cache keeps serving a token for a long while, so expire one the way etcd
    // compaction would: same start key, a revision long compacted away (tokens are unpadded
    // base64url JSON). The apiserver answers
    // 410 with "The provided continue parameter is too old".
    // The apiserver only answers 410 once its own etcd compaction (every 30 s in the stack) has
    // passed the token's revision; right after `stack:up` that may take a moment.
    const stale = Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: 2, start: 'a\u0000' })).toString('base64url');
    for (let i = 0; ; i++) {
      const err = await kubectl(['get', '--raw', `/api/v1/namespaces/${nsC}/secrets?limit=1&continue=${stale}`]).then(() => undefined, (e: Error) => e);
      if (err && /too old/.test(err.message)) break;
      if (i >= 45) throw new Error('the apiserver never expired a continue token at revision 2');
      await new Promise((r) => setTimeout(r, 2_000));
    }
    let expired = false;
    const fetchPage: FetchPage<V1Secret> = (limit, cont) => {
      if (cont && !expired) {
        expired = true;
        const token = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as { rv: number };
        cont = Buffer.from(JSON.stringify({ ...token, rv: 2 })).toString('base64url');
      }
      return k.call('list secrets', (o) => k.core.listNamespacedSecret({ namespace: nsC, limit, ...(cont ? { _continue: cont } : {}) }, o), { retry: true });
    };
    let names: string[] = [];
    const restarts: boolean[] = [];
    for await (const page of listPages([fetchPage], { operation: 'list secrets', pageSize: 2, log })) {
      restarts.push(page.restarted);
      if (page.restarted) names = [];
      names.push(...page.items.map((s) => s.metadata!.name!));
    }
    expect(expired).toBe(true);
    expect(restarts).toEqual([false, true, false, false]);
    expect(names).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);

    // And a stopped run stops its Kubernetes calls.
    const stop = new AbortController();
    stop.abort(new Error('SIGTERM'));
    const stopped = connectKube({ kubeconfig: readStack().kube.kubeconfig, requestDeadlineSeconds: 30 }, log, stop.signal);
    await expect(stopped.call('list secrets', (o) => stopped.core.listNamespacedSecret({ namespace: nsC }, o), { retry: true })).rejects.toMatchObject({
      name: 'AbortedError',
    });
  });

  it('classifies every Secret with its reason and never prints a value', async () => {
    const { run: r, report, text } = await sweep(['--format', 'table']);
    expect(r.code, r.all).toBe(0);
    expect(findPlantedSecrets(r.all + text, V)).toEqual([]);

    const cls = (ns: string, name: string) => {
      const e = entry(report, ns, name);
      return `${e.class}/${e.rule}`;
    };
    expect(cls(nsA, 'sa-token')).toBe('system/system.service-account-token');
    expect(cls(nsA, 'sh.helm.release.v1.shop.v1')).toBe('system/system.helm-release');
    expect(cls(nsA, 'sealed-db')).toBe('managed/managed.sealed-secrets');
    expect(cls(nsA, 'web-tls')).toBe('managed/managed.cert-manager');
    expect(cls(nsA, 'eso-managed')).toBe('managed/managed.external-secrets');
    expect(cls(nsA, 'agent-tls')).toBe('managed/managed.vault-agent-injector');
    expect(cls(nsA, 'ignored-anno')).toBe('ignored/ignored.annotation');
    expect(cls(nsB, 'keep-me')).toBe('ignored/ignored.name');
    expect(entry(report, nsA, 'sealed-db').reason).toContain('SealedSecret sealed-db');
    expect(entry(report, nsA, 'agent-tls').reason).toContain('api-0');

    const leftover = (ns: string, name: string) => {
      const e = entry(report, ns, name);
      expect(e.class, name).toBe('leftover');
      return { status: e.vault?.status, path: e.vault?.path, missing: e.vault?.missingKeys, inUse: e.inUse };
    };
    expect(leftover(nsA, 'db-migrated')).toEqual({ status: 'migrated', path: `secret/${kvBase}db`, missing: [], inUse: false });
    expect(leftover(nsA, 'bin-migrated')).toEqual({ status: 'migrated', path: `secret/${kvBase}binary`, missing: [], inUse: false });
    expect(leftover(nsA, 'shop-db')).toMatchObject({ status: 'migrated', inUse: false });
    expect(leftover(nsA, 'api-used')).toEqual({ status: 'migrated', path: `secret/${kvBase}api`, missing: [], inUse: true });
    expect(entry(report, nsA, 'api-used').advice).toMatch(/still reads the old Secret/);
    expect(entry(report, nsA, 'api-used').usedBy?.refs).toEqual([{ kind: 'Pod', name: 'api-0', via: 'env TOKEN (container api)', rule: 'in-use.pod' }]);
    expect(leftover(nsA, 'partial')).toEqual({ status: 'partly-migrated', path: undefined, missing: ['b'], inUse: false });
    expect(leftover(nsA, 'registry')).toMatchObject({ status: 'not-in-vault', inUse: true });
    expect(entry(report, nsA, 'registry').usedBy?.refs).toEqual([{ kind: 'ServiceAccount', name: 'builder', via: 'imagePullSecrets', rule: 'in-use.service-account' }]);
    expect(leftover(nsA, 'plain-unused')).toMatchObject({ status: 'not-in-vault', inUse: false });
    expect(leftover(nsA, 'owned-migrated')).toMatchObject({ status: 'migrated', inUse: false });

    // The copies people forget.
    expect(entry(report, nsA, 'web-tls').annotationCopy).toMatchObject({ stringDataKeys: ['tls.crt', 'tls.key'], vault: { status: 'not-in-vault' } });
    expect(entry(report, nsA, 'applied-leftover').annotationCopy).toMatchObject({ stringDataKeys: ['password'], differsFromData: false, vault: { status: 'migrated' } });
    const helm = entry(report, nsA, 'sh.helm.release.v1.shop.v1').helmRelease;
    expect(helm).toMatchObject({ release: 'shop', namespace: nsA, revision: 1, status: 'deployed', valuesInVault: 2 });
    expect(helm && 'locations' in helm ? helm.locations.map((l) => l.where).sort() : []).toEqual(['manifest Secret shop-db data.password', 'values.dbPassword']);

    expect(report.totals.byClass).toEqual({ system: 2, managed: 4, ignored: 2, leftover: 11 });
    expect(report.totals.leftovers).toEqual({ migrated: 8, 'partly-migrated': 1, unproven: 0, 'not-in-vault': 2, empty: 0 });
    expect(report.totals.migratedInUse).toBe(1);
    expect(report.byNamespace[nsB]).toEqual({ system: 0, managed: 0, ignored: 1, leftover: 1 });
    expect(report.remediation.enabled).toBe(false);

    // The person's table: one row per finding, names and paths only.
    expect(r.stdout).toMatch(new RegExp(`${nsA}/api-used\\s+leftover\\s+migrated\\s+secret/${kvBase}api\\s+yes`));

    // Metrics reached the Pushgateway, per class and per namespace.
    const metrics = await (await fetch(`${readStack().pushgateway.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`vaultkeeper_secret_sweep_namespace_secrets\\{class="leftover",.*namespace="${nsA}".*\\} 10`));
    // Nothing was deleted by a report-only run.
    expect((await core.listNamespacedSecret({ namespace: nsA })).items.length).toBe(originals.size - 2);
  });

  it('--fail-on makes a run with such findings exit 1', async () => {
    const { run: r, report } = await sweep(['--format', 'none', '--fail-on', 'partly-migrated,helm-copy']);
    expect(r.code).toBe(1);
    expect(report.failOn.matched).toEqual({ 'partly-migrated': 1, 'helm-copy': 1 });
    expect(r.summary?.outcome).toBe('failure');
  });

  it('--delete-migrated --dry-run prints the plan and deletes nothing', async () => {
    const { run: r, report } = await sweep(['--delete-migrated', '--dry-run']);
    expect(r.code, r.all).toBe(0);
    const planned = report.secrets.filter((e) => e.action?.action === 'would-delete').map((e) => `${e.namespace}/${e.name}`);
    expect(planned.sort()).toEqual(
      [`${nsA}/applied-leftover`, `${nsA}/bin-migrated`, `${nsA}/db-migrated`, `${nsA}/shop-db`, `${nsA}/stale`, `${nsB}/b-migrated`].sort(),
    );
    expect(r.stdout).toContain('dry run');
    for (const name of planned) expect(originals.has(name)).toBe(true);
    expect((await core.listNamespacedSecret({ namespace: nsA })).items.length + (await core.listNamespacedSecret({ namespace: nsB })).items.length).toBe(originals.size);
    expect(await kvGet(`${backupPath}/${nsA}/db-migrated`)).toBeUndefined();
  });

  it('refuses to delete a Secret whose resourceVersion changed since it was classified', async () => {
    const log = createLogger({ job: 'secret-sweep', level: 'silent' });
    const cleanups: Array<() => unknown> = [];
    const k = connectKube({ kubeconfig: kube.kubeconfig, requestDeadlineSeconds: 30 }, log);
    const tokenPath = join(workDir, 'vault-token');
    writeFileSync(tokenPath, await mintServiceAccountToken('vaultkeeper', 'vaultkeeper-secret-sweep', { audience: 'vault' }), { mode: 0o600 });
    const vault = await connectVault(
      stackVaultConfig({
        auth: { method: 'kubernetes', mount: 'kubernetes', role: 'vaultkeeper-secret-sweep', tokenPath },
        requestTimeoutSeconds: 30,
        callDeadlineSeconds: 60,
      }),
      { log, onCleanup: (fn) => cleanups.push(fn) },
    );
    try {
      const before = await core.readNamespacedSecret({ namespace: nsA, name: 'stale' });
      const { uid, resourceVersion } = before.metadata!;
      await core.replaceNamespacedSecret({ namespace: nsA, name: 'stale', body: { ...before, metadata: { ...before.metadata, labels: { touched: 'yes' } } } });

      // The apiserver's own precondition check.
      expect(await deleteExactly(k, nsA, 'stale', uid!, resourceVersion!)).toBe('changed');
      // And the job's: it reads the Secret again before writing any backup.
      const summary = await remediate([{ namespace: nsA, name: 'stale', uid: uid!, resourceVersion: resourceVersion! }], {
        kube: k,
        vault,
        backup: { mount: 'secret', path: backupPath },
        maxDeletes: 10,
        pageSize: 100,
        namespaces: [nsA],
        dryRun: false,
        log,
      });
      expect(summary).toMatchObject({ deleted: 0, refused: 1 });
      expect(summary.actions.get(`${nsA}/stale`)?.reason).toMatch(/changed since it was classified/);
      expect((await core.readNamespacedSecret({ namespace: nsA, name: 'stale' })).metadata?.uid).toBe(uid);
      expect(await kvGet(`${backupPath}/${nsA}/stale`)).toBeUndefined();
      originals.set(`${nsA}/stale`, await core.readNamespacedSecret({ namespace: nsA, name: 'stale' }));
    } finally {
      for (const fn of cleanups.reverse()) await fn();
    }
  });

  it('--delete-migrated deletes exactly the migrated, unused ones, each after a verified backup', async () => {
    const { run: r, report } = await sweep(['--delete-migrated', '--format', 'none']);
    expect(r.code, r.all).toBe(0);
    expect(findPlantedSecrets(r.all, V)).toEqual([]);
    const deleted = report.secrets.filter((e) => e.action?.action === 'deleted').map((e) => `${e.namespace}/${e.name}`);
    const expected = [`${nsA}/applied-leftover`, `${nsA}/bin-migrated`, `${nsA}/db-migrated`, `${nsA}/shop-db`, `${nsA}/stale`, `${nsB}/b-migrated`];
    expect(deleted.sort()).toEqual(expected.sort());
    expect(report.remediation).toMatchObject({ enabled: true, deleted: 6, refused: 0, failed: 0 });

    const left = new Set<string>();
    for (const ns of [nsA, nsB]) for (const s of (await core.listNamespacedSecret({ namespace: ns })).items) left.add(`${ns}/${s.metadata!.name}`);
    expect([...originals.keys()].filter((k) => !left.has(k)).sort()).toEqual(expected.sort());

    for (const key of expected) {
      const orig = originals.get(key)!;
      const backup = await kvGet(`${backupPath}/${key}`);
      expect(backup, key).toBeDefined();
      expect(backup!.data).toMatchObject({
        namespace: orig.metadata!.namespace,
        name: orig.metadata!.name,
        uid: orig.metadata!.uid,
        resourceVersion: orig.metadata!.resourceVersion,
        type: orig.type,
        data: orig.data,
        labels: orig.metadata!.labels ?? {},
        annotations: orig.metadata!.annotations ?? {},
      });
    }
    // The remediation log names each backup before its delete counts as done.
    const lines = r.lines.filter((l) => l.msg === 'remediation: deleted');
    expect(lines.map((l) => l.backupPath).sort()).toEqual(expected.map((k) => `secret/${backupPath}/${k}`).sort());
  });

  it('restore puts a deleted Secret back byte for byte, and will not overwrite one', async () => {
    for (const key of [`${nsB}/b-migrated`, `${nsA}/bin-migrated`, `${nsA}/applied-leftover`]) {
      const r = await runJobProcess({ job: 'secret-sweep', args: ['restore', key], env: env() });
      expect(r.code, r.all).toBe(0);
      expect(findPlantedSecrets(r.all, V)).toEqual([]);
      const [ns, name] = key.split('/') as [string, string];
      const now = await core.readNamespacedSecret({ namespace: ns, name });
      const orig = originals.get(key)!;
      expect(now.data).toEqual(orig.data);
      expect(now.type).toBe(orig.type);
      expect(now.metadata?.labels).toEqual(orig.metadata?.labels);
      expect(now.metadata?.annotations).toEqual(orig.metadata?.annotations);
      expect(now.metadata?.uid).not.toBe(orig.metadata?.uid);
    }
    expect(Buffer.from((await core.readNamespacedSecret({ namespace: nsA, name: 'bin-migrated' })).data!['keystore.p12']!, 'base64').equals(binary)).toBe(true);

    const again = await runJobProcess({ job: 'secret-sweep', args: ['restore', `${nsB}/b-migrated`], env: env() });
    expect(again.code).toBe(1);
    expect(again.all).toContain('exists already; not overwritten');
  });

  it('never counts its own backups as "in Vault"', async () => {
    // Sources that cover only the backups: were they indexed, every restored Secret would look migrated.
    const { run: r, report } = await sweep(['--format', 'none'], { SWEEP_KV_SOURCES: `secret:${backupPath}/,secret:vaultkeeper/secret-sweep/` });
    expect(r.code, r.all).toBe(0);
    expect(await kvGet(`${backupPath}/${nsB}/b-migrated`)).toBeDefined();
    expect(entry(report, nsB, 'b-migrated').vault?.status).toBe('not-in-vault');
    expect(entry(report, nsA, 'bin-migrated').vault?.status).toBe('not-in-vault');
  });
});
