import { JobFailure, type JobContext, type JobDefinition } from '@vaultkeeper/runtime';
import { createKmsClient, registerAwsCredentials } from '@vaultkeeper/aws';
import { connectVault, type VaultClient } from '@vaultkeeper/vault';
import { probeClientOptions } from './aws-clients.ts';
import { CHECK_NAMES, failed, runCheck, type CheckName, type CheckOutcome, type CheckResult, type Severity } from './check.ts';
import { checkEmergencyToken } from './checks/emergency-token.ts';
import { checkKmsKey } from './checks/kms-key.ts';
import { checkKmsRoundTrip } from './checks/kms-roundtrip.ts';
import { checkRaft } from './checks/raft.ts';
import { checkVaultNodes } from './checks/vault-nodes.ts';
import { awsFailureOutcome } from './classify-aws-error.ts';
import { vaultFailureOutcome } from './classify-vault-error.ts';
import { jobConfig } from './config.ts';
import { recordCheckMetrics } from './probe-metrics.ts';
import { renderTable, verdictOf } from './report-table.ts';
import { discoverTopology } from './vault-topology.ts';

type Shape = (typeof jobConfig)['shape'];
type Ctx = JobContext<Shape>;

/** A Vault client for the checks: logged in when possible, else bare (seal-status and health need no token). */
interface ProbeVault {
  client: VaultClient | undefined;
  authenticated: boolean;
  /** Why the checks that need a token cannot run. */
  loginFailure?: CheckOutcome;
}

export const job: JobDefinition<Shape> = {
  name: 'kms-probe',
  title: 'can Vault still unseal, and is the cluster healthy?',
  description: `
Checks, every few minutes and cheaply, what auto-unseal and the cluster depend on: the AWS KMS key
(DescribeKey and an Encrypt/Decrypt round trip shaped like Vault's awskms seal), every node's
seal-status and health, Raft autopilot, and optionally the age of the newest verified snapshot in S3
and the expiry of the break-glass token. Prints a table, one JSON summary line and one metric per
check (labelled by check, failure class and severity). Exit 1 when a critical check fails; warnings
alone never fail the run. Every call is bounded; the whole run ends by its deadline. It changes
nothing (--dry-run only skips the metrics push).`,
  commands: { run: 'run every check once and report' },
  config: jobConfig,
  async run(ctx) {
    const cfg = ctx.config;
    const deadline = AbortSignal.any([ctx.signal, AbortSignal.timeout(cfg.deadlineSeconds * 1000)]);
    const severity = (name: CheckName): Severity => (cfg.criticalChecks.includes(name) ? 'critical' : 'warning');

    const kms = createKmsClient(
      probeClientOptions({
        region: cfg.kms.region ?? cfg.aws.region,
        endpoint: cfg.kms.endpoint ?? cfg.aws.endpoint,
        callTimeoutSeconds: cfg.kms.callTimeoutSeconds,
        maxAttempts: cfg.kms.maxAttempts,
      }),
    );
    ctx.onCleanup(() => kms.destroy());
    await registerAwsCredentials(kms, cfg.kms.callTimeoutSeconds);

    const vault = connectForProbe(ctx, deadline);
    const topology = vault.then((v) =>
      v.client
        ? discoverTopology(
            {
              client: v.client,
              authenticated: v.authenticated,
              configured: cfg.nodes.addresses,
              vaultAddresses: [cfg.vault.address, ...cfg.vault.fallbackAddresses],
              allowInsecureHttp: cfg.vault.allowInsecureHttp,
              callTimeoutSeconds: cfg.nodes.callTimeoutSeconds,
            },
            deadline,
          )
        : undefined,
    );
    const check = (name: CheckName, classify: (err: unknown) => CheckOutcome, fn: (signal: AbortSignal) => Promise<CheckOutcome>) =>
      runCheck({ name, severity: severity(name), signal: deadline, classify }, fn);
    const skipped = (name: CheckName, summary: string): Promise<CheckResult> =>
      Promise.resolve({ status: 'skipped', summary, name, severity: severity(name), latencyMs: 0 });

    const pending: Record<CheckName, Promise<CheckResult>> = {
      'kms-key': check('kms-key', (err) => awsFailureOutcome(err, 'DescribeKey'), (s) =>
        checkKmsKey(
          { kms, keyId: cfg.kms.keyId, expectedKeyArn: cfg.kms.expectedKeyArn, region: cfg.kms.region ?? cfg.aws.region, callTimeoutSeconds: cfg.kms.callTimeoutSeconds },
          s,
        ),
      ),
      'kms-roundtrip': check('kms-roundtrip', (err) => awsFailureOutcome(err), (s) =>
        checkKmsRoundTrip({ kms, keyId: cfg.kms.keyId, callTimeoutSeconds: cfg.kms.callTimeoutSeconds }, s),
      ),
      'vault-nodes': check('vault-nodes', (err) => vaultFailureOutcome(err, 'nodes'), async (s) => {
        const v = await vault;
        const topo = await topology;
        if (!v.client || !topo) return v.loginFailure ?? failed('other', 'no Vault client');
        return checkVaultNodes(
          { client: v.client, authenticated: v.authenticated, callTimeoutSeconds: cfg.nodes.callTimeoutSeconds, expectedSealType: cfg.nodes.expectedSealType, topology: topo },
          s,
        );
      }),
      raft: check('raft', (err) => vaultFailureOutcome(err, 'autopilot state'), async (s) => {
        const v = await vault;
        // Not logged in, raft still asks the nodes what needs no token: that is how a lost quorum shows.
        if (!v.client) return v.loginFailure ?? failed('other', 'no Vault client');
        const topo = await topology;
        return checkRaft(
          {
            client: v.client,
            authenticated: v.authenticated,
            ...(v.loginFailure ? { loginFailure: v.loginFailure } : {}),
            alternates: topo?.targets ?? [],
            callTimeoutSeconds: cfg.nodes.callTimeoutSeconds,
            expectedVoters: cfg.raft.expectedVoters,
            minFailureTolerance: cfg.raft.minFailureTolerance,
          },
          s,
        );
      }),
      'snapshot-age': cfg.snapshot.bucket
        ? check('snapshot-age', (err) => awsFailureOutcome(err, 'S3'), async (s) => {
            // Loaded only when configured: the S3 SDK is half the bundle's start-up memory.
            const { checkSnapshotAge, createProbeS3Client, snapshotCluster } = await import('./checks/snapshot-age.ts');
            const v = await vault;
            if (!v.client && !(cfg.snapshot.clusterId && cfg.snapshot.cluster)) return v.loginFailure ?? failed('other', 'no Vault client');
            // Only this cluster's snapshots count: which one it is, sys/health says (no token
            // needed), or snapshot.clusterId when Vault does not answer.
            const who = await snapshotCluster(v.client, { cluster: cfg.snapshot.cluster, clusterId: cfg.snapshot.clusterId }, cfg.nodes.callTimeoutSeconds, s);
            if ('status' in who) return who;
            const s3 = createProbeS3Client({
              region: cfg.snapshot.region ?? cfg.aws.region,
              endpoint: cfg.snapshot.endpoint ?? cfg.aws.endpoint,
              callTimeoutSeconds: cfg.kms.callTimeoutSeconds,
              maxAttempts: cfg.kms.maxAttempts,
              forcePathStyle: cfg.snapshot.forcePathStyle,
            });
            ctx.onCleanup(() => s3.destroy());
            return checkSnapshotAge(
              {
                s3,
                bucket: cfg.snapshot.bucket!,
                prefix: cfg.snapshot.prefix,
                ...who,
                maxAgeSeconds: cfg.snapshot.maxAgeSeconds,
                callTimeoutSeconds: cfg.kms.callTimeoutSeconds,
              },
              s,
            );
          })
        : skipped('snapshot-age', 'no snapshot bucket configured'),
      'emergency-token': cfg.emergencyToken.enabled
        ? check('emergency-token', (err) => vaultFailureOutcome(err, 'emergency-token record'), async (s) => {
            const v = await vault;
            if (!v.client || !v.authenticated) return v.loginFailure ?? failed('other', 'no Vault client');
            return checkEmergencyToken(
              { client: v.client, statePath: cfg.emergencyToken.statePath, minRemainingSeconds: cfg.emergencyToken.minRemainingSeconds, callTimeoutSeconds: cfg.nodes.callTimeoutSeconds },
              s,
            );
          })
        : skipped('emergency-token', 'not enabled'),
    };
    const results = await Promise.all(CHECK_NAMES.map((n) => pending[n]));
    // SIGTERM: report it as the run's failure (exit 1 with the runtime's "run aborted"), not as checks.
    if (ctx.signal.aborted) throw ctx.signal.reason;

    for (const r of results) {
      const { name, status, severity: sev, latencyMs, summary } = r;
      const fields = { check: name, status, severity: sev, latencyMs, ...(r.status === 'fail' ? { class: r.class } : {}), ...('details' in r ? { details: r.details } : {}) };
      if (status === 'fail') ctx.log[sev === 'critical' ? 'error' : 'warn'](fields, summary);
      else if (status === 'warn') ctx.log.warn({ ...fields, notes: r.notes }, summary);
      else ctx.log.info(fields, summary);
    }
    recordCheckMetrics(ctx.metrics, results);
    if (cfg.table) process.stdout.write(renderTable(results));

    const verdict = verdictOf(results);
    return {
      outcome: verdict.ok ? 'success' : 'failure',
      healthy: verdict.ok,
      failed: verdict.criticalFailures,
      warnings: verdict.warnings,
      checks: Object.fromEntries(
        results.map((r) => [r.name, { status: r.status, severity: r.severity, ...(r.status === 'fail' ? { class: r.class } : {}), latencyMs: r.latencyMs, summary: r.summary }]),
      ),
    };
  },
};

/**
 * Logs in as the job's role. The login gets its own short bound (a Vault that hangs must leave the
 * KMS checks their time); that bound is also the client's default signal, so every later call
 * passes its own. When login fails the nodes are still probed with a bare client, because
 * sys/seal-status and sys/health answer without a token; which is what matters on the day the
 * cluster is half down.
 */
async function connectForProbe(ctx: Ctx, deadline: AbortSignal): Promise<ProbeVault> {
  const cfg = ctx.config;
  const loginSignal = AbortSignal.any([deadline, AbortSignal.timeout(cfg.nodes.callTimeoutSeconds * 1000)]);
  try {
    const client = await connectVault(cfg.vault, { log: ctx.log, signal: loginSignal, onCleanup: ctx.onCleanup });
    return { client, authenticated: true };
  } catch (err) {
    const loginFailure =
      err instanceof JobFailure ? failed('denied', `cannot log in: ${err.message}`) : vaultFailureOutcome(err, 'login');
    ctx.log.warn({ err }, 'could not log in to Vault; probing the nodes without a token');
    try {
      // connectVault, not a bare VaultClient: the same CA and TLS settings as the login had.
      const client = await connectVault(cfg.vault, { log: ctx.log, signal: deadline, onCleanup: ctx.onCleanup }, { login: false });
      return { client, authenticated: false, loginFailure };
    } catch (inner) {
      return { client: undefined, authenticated: false, loginFailure: failed('other', (inner as Error).message) };
    }
  }
}
