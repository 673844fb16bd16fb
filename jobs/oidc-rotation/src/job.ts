import { JobFailure, registerSecret, type JobDefinition, type JobResult } from '@vaultkeeper/runtime';
import { connectVault } from '@vaultkeeper/vault';
import { connectAuthentik } from './authentik-connection.ts';
import { callBoundSeconds, jobConfig, leaseSeconds, recordPath } from './config.ts';
import { authentikFromDiscoveryUrl, readOidcConfig } from './oidc-config.ts';
import { locateProvider, loginCheckTarget, preflightProblems } from './preflight.ts';
import { recoverPending } from './recover.ts';
import { rotate } from './rotate.ts';
import { RotationMetrics } from './rotation-metrics.ts';
import { RotationRecordStore, type RecordSnapshot, type RotationRecord } from './rotation-record.ts';
import type { RunContext } from './run-context.ts';
import { sync } from './sync.ts';

export const job: JobDefinition<typeof jobConfig.shape> = {
  name: 'oidc-rotation',
  title: "keeps Vault's OIDC client secret and Authentik's in step, and rotates it",
  description: `
People log into Vault through Authentik. Vault's OIDC auth config (auth/<mount>/config) holds the
client secret of an Authentik OAuth2 provider; when the two differ, nobody can log in.

sync    Authentik is the source of truth: when its secret differs from the one Vault was given
        (kept, with a fingerprint, in a KV record), write it into Vault. A second run changes
        nothing.
rotate  Make a new secret (128 letters and digits), store it in the KV record first (pending),
        set it on Authentik (PATCH client_secret alone), write it into Vault, verify, mark it
        current. A failure after Authentik was changed puts Authentik back; what cannot be put
        back is finished by the next run from the record.

Both refuse before changing anything when the provider is not confidential, has no signing key,
or is not the expected application's, or when Vault's config cannot be written back whole.
The Authentik API token is read from Vault KV (authentik.apiTokenPath), never from the
environment.`,
  commands: {
    sync: "write Authentik's current client secret into Vault when it changed",
    rotate: 'make a new client secret and set it on Authentik and in Vault',
  },
  config: jobConfig,
  async run(ctx): Promise<JobResult> {
    const cfg = ctx.config;
    const mount = cfg.oidc.mount;
    // Checked before anything is touched: a lease too short for the calls is a config error (exit 2).
    const lease = leaseSeconds(cfg);
    const vault = await connectVault(cfg.vault, ctx);
    // OpenBao's standbys answer reads from their own, possibly lagging, copy (standby reads are
    // on by default with Raft: openbao.org/docs/concepts/consistency). The record's version for
    // check-and-set and the config read-back must be the active node's, so talk to it alone.
    await vault.findActiveNode();
    const store = new RotationRecordStore(vault, cfg.kvMount, recordPath(cfg), ctx.signal, ctx.log);
    ctx.onCleanup(async () => {
      if (await store.releaseIfHeld()) ctx.log.info({ record: store.displayPath }, 'claim on the rotation record released');
    });

    const vaultConfig = await readOidcConfig(vault, mount);
    if (!vaultConfig) throw new JobFailure(`auth/${mount}/config does not exist: is the OIDC auth method enabled and configured at ${mount}/?`);
    const derived = authentikFromDiscoveryUrl(vaultConfig.oidc_discovery_url);
    const authentikUrl = cfg.authentik.url ?? derived?.url;
    const application = cfg.authentik.application ?? derived?.application;
    if (!authentikUrl || !application) {
      throw new JobFailure(
        `cannot tell Authentik's URL or the application from auth/${mount}/config's oidc_discovery_url (not of the form <origin>/application/o/<slug>/): set AUTHENTIK_URL and OIDC_ROTATION_APPLICATION`,
      );
    }
    const authentik = await connectAuthentik({
      vault,
      log: ctx.log,
      signal: ctx.signal,
      url: authentikUrl,
      kvMount: cfg.kvMount,
      ...cfg.authentik,
    });

    const snap = await store.read();
    const { provider, application: app } = await locateProvider(authentik, {
      application,
      providerId: cfg.authentik.providerId,
      clientId: cfg.authentik.clientId,
    });
    registerSecret(provider.client_secret);
    const problems = preflightProblems({
      provider,
      application: app,
      expectedApplication: application,
      pinnedClientId: cfg.authentik.clientId,
      vaultConfig,
      mount,
      record: snap.data,
    });
    const target = await loginCheckTarget(vault, mount, vaultConfig, cfg.oidc);
    if ('problem' in target) problems.push(target.problem);
    if (problems.length || 'problem' in target) {
      throw new JobFailure(`refusing to ${ctx.command}: ${problems.length === 1 ? 'a problem' : `${problems.length} problems`} found before changing anything`, { problems });
    }

    const metrics = new RotationMetrics(ctx.metrics);
    const rc: RunContext = {
      log: ctx.log,
      signal: ctx.signal,
      dryRun: ctx.dryRun,
      cfg,
      vault,
      authentik,
      store,
      metrics,
      mount,
      provider,
      application,
      loginCheck: target,
      leaseSeconds: lease,
      callSeconds: { authentik: callBoundSeconds(cfg.authentik), vault: callBoundSeconds(cfg.vault) },
      summary: { mode: ctx.command, mount, application, provider: provider.pk, record: store.displayPath },
    };
    ctx.log.info({ provider: provider.pk, application, mount, authentik: authentikUrl, record: store.displayPath }, 'preflight passed');

    let current: RecordSnapshot = snap;
    if (hasPending(snap)) {
      const recovered = await recoverPending(rc, snap);
      if (recovered.skipped || ctx.dryRun) return recovered.result;
      // A rotation that is now complete is this run's rotation; anything else, and a sync, is done.
      if (ctx.command === 'sync' || (recovered.outcome === 'completed' && snap.data.pending.mode === 'rotate')) return recovered.result;
      current = await store.read();
      rc.summary = { ...rc.summary, recovered: recovered.result.changed === true };
    }
    return ctx.command === 'rotate' ? rotate(rc, current) : sync(rc, current);
  },
};

function hasPending(snap: RecordSnapshot): snap is RecordSnapshot & { data: RotationRecord & { pending: NonNullable<RotationRecord['pending']> } } {
  return Boolean(snap.data?.pending);
}
