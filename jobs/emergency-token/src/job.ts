import { randomUUID } from 'node:crypto';
import { createKmsClient, createS3Client } from '@vaultkeeper/aws';
import { defineConfig, field, JobFailure, mergeSpecs, z, type JobContext, type JobDefinition, type JobResult } from '@vaultkeeper/runtime';
import { KV_RECORDS } from '@vaultkeeper/records';
import { clusterIdentity, connectVault, isLoopback, vaultConfig, type VaultClient } from '@vaultkeeper/vault';
import { AppRoleSecretIdIssuer } from './approle-secret-id.ts';
import { CREDENTIAL_KINDS, type CredentialIssuer, type CredentialKind } from './credential.ts';
import { sameFingerprint } from './fingerprint.ts';
import { LauncherIssuer } from './launcher.ts';
import { mintCommands, reveal } from './reveal.ts';
import { rotate } from './rotation.ts';
import { BitwardenSink, loadBitwardenSdk } from './sinks/bitwarden.ts';
import { S3EnvelopeSink } from './sinks/s3-envelope.ts';
import type { CredentialSink } from './sinks/sink.ts';
import { StateStore } from './state-record.ts';
import { judgeExpiry, recordExpiryMetrics } from './watchdog.ts';

const DAY = 86_400;
/** Names the purpose in the KMS encryption context and in the credential's metadata. */
const KMS_PURPOSE = 'vaultkeeper-breakglass';
const PURPOSE = 'break-glass Vault access for when OIDC login (Authentik) is down';

const secureUrl = () =>
  field.url().refine((u) => u.startsWith('https://') || isLoopback(u), 'must be https:// (plain http only to a loopback address)');

const jobConfig = defineConfig({
  shape: {
    // prefault, not default: zod 4 returns a default as it is, unchecked; a prefault is parsed,
    // so the inner defaults and the sink's cross-field rules apply to an absent section too.
    breakglass: z
      .strictObject({
        /** launcher (default) or approle-secret-id. */
        kind: z.enum(CREDENTIAL_KINDS).default('launcher'),
        launcherRole: field.nonEmpty().default('breakglass-launcher'),
        adminRole: field.nonEmpty().default('breakglass-admin'),
        /** Lifetime asked for the launcher or secret ID; the role's explicit max TTL caps it. */
        ttlSeconds: field.seconds(3600).default(744 * 3600),
        approleMount: field.nonEmpty().default('approle'),
        approleRole: field.nonEmpty().default('breakglass'),
        /** A run inside this age of the current credential does nothing (unless --force). */
        minAgeSeconds: field.seconds(0).default(27 * DAY),
        /** The watchdog fails the run when the credential expires within this window. */
        expiryWarnSeconds: field.seconds(0).default(3 * DAY),
        /** The address an operator uses (printed by reveal); default: vault.address. */
        operatorVaultAddress: field.url().optional(),
        /**
         * A label for this cluster in the default S3 key and the KMS encryption context. Unset: the
         * Vault cluster's own cluster_id (sys/health), so two clusters never share an envelope.
         * The context always carries the cluster_id too, whatever the label.
         */
        cluster: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, dots, dashes or underscores').optional(),
        /**
         * The Vault cluster's cluster_id, for when no node can say it (every node sealed, or Vault
         * unreachable, on the day reveal is needed). It is the <id> in the default key
         * emergency-token/<id>/breakglass.json. A node that does report a cluster_id must agree.
         */
        clusterId: z
          .string()
          .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, "must be a cluster_id (a UUID, as sys/health reports it)")
          .optional(),
        /** The CLI named in reveal's commands: vault or bao (same commands). */
        cli: z.enum(['vault', 'bao']).default('vault'),
      })
      .superRefine((b, ctx) => {
        // A window at least as long as the credential's life would fail (and rotate) every run.
        if (b.expiryWarnSeconds >= b.ttlSeconds) ctx.addIssue({ code: 'custom', path: ['expiryWarnSeconds'], message: 'must be shorter than breakglass.ttlSeconds' });
        if (b.minAgeSeconds >= b.ttlSeconds) ctx.addIssue({ code: 'custom', path: ['minAgeSeconds'], message: 'must be shorter than breakglass.ttlSeconds' });
      })
      .prefault({}),
    state: z
      .strictObject({
        mount: field.nonEmpty().default('secret'),
        path: field.nonEmpty().default(KV_RECORDS.emergencyTokenState),
      })
      .prefault({}),
    sink: z
      .strictObject({
        type: z.enum(['s3', 'bitwarden']).default('s3'),
        s3: z
          .strictObject({
            bucket: field.nonEmpty('an S3 bucket name').optional(),
            /** Default: emergency-token/<breakglass.cluster, else the cluster_id>/breakglass.json */
            key: field.nonEmpty().optional(),
            kmsKeyId: field.nonEmpty().default('alias/vaultkeeper-data'),
            forcePathStyle: field.bool().default(false),
          })
          .prefault({}),
        bitwarden: z
          .strictObject({
            organizationId: field.nonEmpty().optional(),
            secretId: field.nonEmpty().optional(),
            /** KV v2 path (under state.mount) of the machine-account access token, field `accessToken`. */
            accessTokenPath: field.nonEmpty().default('vaultkeeper/bitwarden/emergency-token'),
            apiUrl: secureUrl().default('https://api.bitwarden.com'),
            identityUrl: secureUrl().default('https://identity.bitwarden.com'),
          })
          .prefault({}),
      })
      .superRefine((s, ctx) => {
        if (s.type === 's3' && !s.s3.bucket) ctx.addIssue({ code: 'custom', path: ['s3', 'bucket'], message: 'is required when sink.type is s3' });
        if (s.type === 'bitwarden') {
          if (!s.bitwarden.organizationId) ctx.addIssue({ code: 'custom', path: ['bitwarden', 'organizationId'], message: 'is required when sink.type is bitwarden' });
          if (!s.bitwarden.secretId) ctx.addIssue({ code: 'custom', path: ['bitwarden', 'secretId'], message: 'is required when sink.type is bitwarden' });
        }
      })
      .prefault({}),
  },
  env: {
    BREAKGLASS_KIND: { path: 'breakglass.kind', doc: 'launcher (default) or approle-secret-id' },
    BREAKGLASS_LAUNCHER_ROLE: { path: 'breakglass.launcherRole', doc: 'token role that mints the launcher (default breakglass-launcher)' },
    BREAKGLASS_ADMIN_ROLE: { path: 'breakglass.adminRole', doc: 'token role the launcher mints 1h admin tokens through (default breakglass-admin)' },
    BREAKGLASS_TTL: { path: 'breakglass.ttlSeconds', doc: 'lifetime asked for the launcher / secret ID (default 744h; the role caps it)' },
    BREAKGLASS_APPROLE_MOUNT: { path: 'breakglass.approleMount', doc: 'AppRole mount for kind approle-secret-id (default approle)' },
    BREAKGLASS_APPROLE_ROLE: { path: 'breakglass.approleRole', doc: 'AppRole role for kind approle-secret-id (default breakglass)' },
    BREAKGLASS_MIN_AGE: { path: 'breakglass.minAgeSeconds', doc: 'skip when the current credential is younger (default 27d)' },
    BREAKGLASS_EXPIRY_WARN: { path: 'breakglass.expiryWarnSeconds', doc: 'fail when the credential expires within this (default 3d)' },
    BREAKGLASS_OPERATOR_VAULT_ADDR: { path: 'breakglass.operatorVaultAddress', doc: 'Vault address printed for operators (default VAULT_ADDR)' },
    BREAKGLASS_CLUSTER_ID: { path: 'breakglass.clusterId', doc: "the Vault cluster's cluster_id when no node can report it (all sealed or unreachable); a node that reports one must agree" },
    BREAKGLASS_CLUSTER: { path: 'breakglass.cluster', doc: "cluster label in the S3 key and the KMS encryption context (default: the Vault cluster's cluster_id)" },
    BREAKGLASS_CLI: { path: 'breakglass.cli', doc: 'CLI in the printed commands: vault (default) or bao' },
    BREAKGLASS_STATE_MOUNT: { path: 'state.mount', doc: 'KV v2 mount of the state record (default secret)' },
    BREAKGLASS_STATE_PATH: { path: 'state.path', doc: 'path of the state record (default vaultkeeper/emergency-token/state)' },
    BREAKGLASS_SINK: { path: 'sink.type', doc: 's3 (default) or bitwarden (experimental)' },
    BREAKGLASS_S3_BUCKET: { path: 'sink.s3.bucket', doc: 'versioned S3 bucket for the envelope (required for the s3 sink)' },
    BREAKGLASS_S3_KEY: { path: 'sink.s3.key', doc: 'object key (default emergency-token/<cluster label or cluster_id>/breakglass.json)' },
    BREAKGLASS_KMS_KEY_ID: { path: 'sink.s3.kmsKeyId', doc: 'KMS key for the data key and SSE-KMS (default alias/vaultkeeper-data)' },
    BREAKGLASS_S3_FORCE_PATH_STYLE: { path: 'sink.s3.forcePathStyle', doc: 'path-style S3 URLs, for S3-compatible stores (default false)' },
    BREAKGLASS_BITWARDEN_ORGANIZATION_ID: { path: 'sink.bitwarden.organizationId', doc: 'Bitwarden organization (bitwarden sink)' },
    BREAKGLASS_BITWARDEN_SECRET_ID: { path: 'sink.bitwarden.secretId', doc: 'Secrets Manager secret that holds the credential (bitwarden sink)' },
    BREAKGLASS_BITWARDEN_ACCESS_TOKEN_PATH: {
      path: 'sink.bitwarden.accessTokenPath',
      doc: 'KV path (field accessToken) of the machine-account token (default vaultkeeper/bitwarden/emergency-token)',
    },
    BREAKGLASS_BITWARDEN_API_URL: { path: 'sink.bitwarden.apiUrl', doc: 'default https://api.bitwarden.com (EU: https://api.bitwarden.eu)' },
    BREAKGLASS_BITWARDEN_IDENTITY_URL: { path: 'sink.bitwarden.identityUrl', doc: 'default https://identity.bitwarden.com (EU: https://identity.bitwarden.eu)' },
  },
});

const spec = mergeSpecs(vaultConfig, jobConfig);
type Ctx = JobContext<(typeof spec)['shape']>;
type Config = Ctx['config'];

export const job: JobDefinition<(typeof spec)['shape']> = {
  name: 'emergency-token',
  title: 'rotate the break-glass credential, deliver it out of band, prove it, revoke the old one',
  description: `
Keeps the emergency (break-glass) way into Vault for the day OIDC login is down: a launcher token
(orphan, non-renewable, about a month) whose only power is minting 1h non-renewable admin tokens,
or optionally a one-use AppRole secret ID. Each rotation creates the new credential, delivers it
(S3 envelope-encrypted with KMS, or Bitwarden Secrets Manager), reads it back and compares
fingerprints, proves it works, and only then revokes the previous one (and every admin token minted
from it). The Vault KV record keeps accessors, times, the fingerprint and the sink location, never
the credential. Fails (exit 1) when the credential expires within the warning window.`,
  commands: {
    rotate: 'rotate when due, then check expiry',
    check: 'only check: the credential is alive, in the sink, and not about to expire',
    reveal: 'decrypt and show the current credential on a terminal, with the commands to mint a 1h admin token',
  },
  options: {
    force: { type: 'boolean', description: 'rotate: rotate even when the credential is young; reveal: print even when stdout is not a terminal' },
  },
  config: spec,
  async run(ctx) {
    const cfg = ctx.config;
    if (ctx.command === 'reveal') return runReveal(ctx);

    const vault = await connectVault(cfg.vault, ctx);
    // OpenBao standbys answer reads from their own, possibly lagging, copy of storage by default
    // (openbao.org docs, concepts/consistency: eventual consistency unless disable_standby_reads):
    // a lookup right after a revoke could still see the token. Every call goes to the active node.
    await vault.findActiveNode();
    const runId = randomUUID();
    const store = new StateStore(vault, cfg.state.mount, cfg.state.path, runId, ctx.log);
    const issuers = makeIssuers(cfg, vault, ctx);
    const issuer = issuers[cfg.breakglass.kind];
    const sink = await makeSink(cfg, ctx, vault, await whichCluster(cfg, vault, ctx));

    if (ctx.command === 'check') return runCheck(ctx, store, issuers, sink);

    const result = await rotate({
      store,
      issuer,
      issuers,
      sink,
      log: ctx.log,
      signal: ctx.signal,
      settings: {
        minAgeSeconds: cfg.breakglass.minAgeSeconds,
        warnSeconds: cfg.breakglass.expiryWarnSeconds,
        force: Boolean(ctx.options.force),
        dryRun: ctx.dryRun,
        vaultAddress: cfg.breakglass.operatorVaultAddress ?? cfg.vault.address,
        rotatedBy: `vaultkeeper-${ctx.job}`,
        runId,
        purpose: PURPOSE,
      },
    });
    const record = result.state.record;
    const verdict = judgeExpiry(record, result.status, cfg.breakglass.expiryWarnSeconds);
    recordExpiryMetrics(ctx.metrics, record, verdict);
    ctx.metrics.gauge('rotated', '1 when this run made a new break-glass credential.').set(result.action === 'rotated' ? 1 : 0);
    const summary: JobResult = {
      action: result.action,
      reason: result.reason,
      kind: record.kind,
      accessor: record.accessor,
      expiresAt: verdict.expiresAt ?? record.expiresAt,
      expiresInDays: verdict.expiresInDays,
      sink: record.sink,
      state: store.location,
      ...(result.previousAccessor ? { previousAccessor: result.previousAccessor, previousRevoked: result.previousRevoked } : {}),
      ...(result.recovered ? { recovered: result.recovered } : {}),
      ...(record.unrevoked?.length ? { unrevoked: record.unrevoked.map((u) => u.accessor) } : {}),
    };
    if (!verdict.ok && !ctx.dryRun) throw new JobFailure(verdict.problem!, { ...summary, check: 'expiry' });
    if (!verdict.ok) ctx.log.warn({ problem: verdict.problem }, 'dry run: the expiry watchdog would fail this run');
    return { outcome: result.action === 'skipped' || result.action === 'would-skip' ? 'skipped' : 'success', ...summary };
  },
};

function makeIssuers(cfg: Config, vault: VaultClient, ctx: Ctx): Record<CredentialKind, CredentialIssuer> {
  // The proof runs as the new token itself, through the one Vault client with a given token.
  const connectAs = async (token: string) => {
    const as = await connectVault({ ...cfg.vault, auth: { ...cfg.vault.auth, method: 'token' }, token }, ctx);
    await as.findActiveNode();
    return as;
  };
  return {
    launcher: new LauncherIssuer(vault, { launcherRole: cfg.breakglass.launcherRole, adminRole: cfg.breakglass.adminRole, ttlSeconds: cfg.breakglass.ttlSeconds }, connectAs),
    'approle-secret-id': new AppRoleSecretIdIssuer(vault, { mount: cfg.breakglass.approleMount, role: cfg.breakglass.approleRole, ttlSeconds: cfg.breakglass.ttlSeconds }),
  };
}

/** This Vault cluster: its cluster_id, and the label its envelope goes under. */
interface Cluster {
  id: string;
  label: string;
}

async function whichCluster(cfg: Config, vault: VaultClient, ctx: Ctx): Promise<Cluster> {
  const override = cfg.breakglass.clusterId?.toLowerCase();
  const label = (id: string) => cfg.breakglass.cluster ?? id;
  let identity;
  try {
    identity = await clusterIdentity(vault, ctx.signal);
  } catch (err) {
    if (!override || ctx.signal.aborted) throw err;
    // The day reveal is for: no Vault node answers at all. The envelope needs AWS only.
    ctx.log.warn({ err, clusterId: override }, 'no Vault node answered sys/health; using BREAKGLASS_CLUSTER_ID');
    return { id: override, label: label(override) };
  }
  if (identity.id) {
    if (override && override !== identity.id.toLowerCase()) {
      throw new JobFailure(
        `BREAKGLASS_CLUSTER_ID is ${override}, but Vault at ${identity.node} reports cluster_id ${identity.id}: that is another cluster's envelope; unset BREAKGLASS_CLUSTER_ID or point VAULT_ADDR at the cluster it names`,
      );
    }
    ctx.log.info({ clusterId: identity.id, clusterName: identity.name, node: identity.node }, 'Vault cluster identified');
    return { id: identity.id, label: label(identity.id) };
  }
  if (override) {
    ctx.log.warn({ clusterId: override, node: identity.node, sealed: identity.sealed }, 'no Vault node reports a cluster_id; using BREAKGLASS_CLUSTER_ID');
    return { id: override, label: label(override) };
  }
  const why =
    identity.initialized === false ? 'is not initialised'
    : identity.sealed ? 'is sealed (a sealed node does not report its cluster_id)'
    : 'reports no cluster_id in sys/health';
  throw new JobFailure(
    `Vault at ${identity.node} ${why}, and no other node configured (VAULT_FALLBACK_ADDRS) reported one: cannot tell whose break-glass envelope to use; unseal a node, list the nodes in VAULT_FALLBACK_ADDRS, or set BREAKGLASS_CLUSTER_ID to the cluster's cluster_id (the <id> in emergency-token/<id>/breakglass.json)`,
  );
}

/** Where envelopes were kept before the default followed the cluster's identity (breakglass.cluster defaulted to `vault`). */
const LEGACY_DEFAULT_KEY = 'emergency-token/vault/breakglass.json';

async function makeSink(cfg: Config, ctx: Ctx, vault: VaultClient | undefined, cluster: Cluster): Promise<CredentialSink> {
  if (cfg.sink.type === 's3') {
    // Region, endpoint and credentials come the AWS SDK's own way (AWS_REGION, AWS_ENDPOINT_URL,
    // IRSA or the default provider chain), as for every AWS client in the project.
    const s3 = createS3Client({ forcePathStyle: cfg.sink.s3.forcePathStyle });
    const kms = createKmsClient({});
    ctx.onCleanup(() => {
      s3.destroy();
      kms.destroy();
    });
    return new S3EnvelopeSink(s3, kms, {
      bucket: cfg.sink.s3.bucket!,
      key: cfg.sink.s3.key ?? `emergency-token/${cluster.label}/breakglass.json`,
      kmsKeyId: cfg.sink.s3.kmsKeyId,
      encryptionContext: { cluster: cluster.label, clusterId: cluster.id, purpose: KMS_PURPOSE },
    });
  }
  if (!vault) throw new JobFailure('reveal reads the S3 sink only: with the Bitwarden sink, open the secret in Bitwarden itself');
  const bw = cfg.sink.bitwarden;
  // The machine-account token lives in Vault KV, never in the environment or on the command line.
  const stored = await vault.read(`${cfg.state.mount}/data/${bw.accessTokenPath}`, z.object({ data: z.object({ accessToken: z.string().min(1) }) }));
  const api = await loadBitwardenSdk({ apiUrl: bw.apiUrl, identityUrl: bw.identityUrl });
  return new BitwardenSink(api, { organizationId: bw.organizationId!, secretId: bw.secretId!, accessToken: stored.data.accessToken }, (c) =>
    mintCommands(c, cfg.breakglass.cli),
  );
}

async function runReveal(ctx: Ctx): Promise<JobResult> {
  // No Vault login: on the day this is needed, nobody can log in to Vault. AWS access is enough,
  // and sys/health (no token) says which cluster's envelope to open.
  const vault = await connectVault(ctx.config.vault, ctx, { login: false });
  const sink = await makeSink(ctx.config, ctx, undefined, await whichCluster(ctx.config, vault, ctx));
  if (ctx.dryRun) {
    ctx.log.info({ sink: sink.name }, 'dry run: would decrypt and print the current break-glass credential');
    return { outcome: 'skipped' };
  }
  const usesDefaultKey = ctx.config.sink.type === 's3' && !ctx.config.sink.s3.key && !ctx.config.breakglass.cluster;
  const shown = await reveal({
    sink,
    out: process.stdout,
    force: Boolean(ctx.options.force),
    cli: ctx.config.breakglass.cli,
    signal: ctx.signal,
    // An envelope from before the upgrade is at the old default until the job's next rotation.
    ...(usesDefaultKey
      ? { whenEmpty: `if the job has not rotated since vaultkeeper started keeping envelopes by cluster id, the envelope is still at ${LEGACY_DEFAULT_KEY}: run reveal with BREAKGLASS_CLUSTER=vault` }
      : {}),
  });
  ctx.log.info({ accessor: shown.accessor, sink: shown.location }, 'break-glass credential shown');
  return { ...shown };
}

async function runCheck(ctx: Ctx, store: StateStore, issuers: Record<CredentialKind, CredentialIssuer>, sink: CredentialSink): Promise<JobResult> {
  const { record } = await store.read(ctx.signal);
  const kind = record.kind ?? 'launcher';
  const status = record.accessor ? await issuers[kind].status(record.accessor, ctx.signal) : undefined;
  const verdict = judgeExpiry(record, status, ctx.config.breakglass.expiryWarnSeconds);
  const problems = verdict.ok ? [] : [verdict.problem!];
  if (verdict.ok && record.fingerprint) {
    const held = await sink.current(ctx.signal);
    if (!held || !sameFingerprint(held.credential.fingerprint, record.fingerprint)) problems.push(`the ${sink.name} sink does not hold the recorded credential`);
  }
  if (record.unrevoked?.length) problems.push(`replaced credentials still valid: ${record.unrevoked.map((u) => u.accessor).join(', ')}`);
  if (record.pending) problems.push(`run ${record.pending.runId} did not finish; the next rotation finishes or undoes it`);
  recordExpiryMetrics(ctx.metrics, record, verdict);
  ctx.metrics.gauge('check_problems', 'Problems the last check found (expiry, sink, unrevoked or unfinished rotations).').set(problems.length);
  const summary = { accessor: record.accessor, expiresAt: verdict.expiresAt, expiresInDays: verdict.expiresInDays, sink: record.sink, problems };
  if (problems.length) throw new JobFailure(problems.join('; '), { ...summary, check: 'expiry' });
  return summary;
}
