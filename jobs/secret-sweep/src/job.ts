import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { UsageError, type JobDefinition, type JobResult } from '@vaultkeeper/runtime';
import { connectVault } from '@vaultkeeper/vault';
import { FAIL_ON, sweepConfig, type FailOn, type SweepConfig } from './config.ts';
import { connectKube } from './kube.ts';
import { recordMetrics, ReportBuilder, writeJsonReport, writeTable, type ReportHead } from './report.ts';
import { parseTarget, restoreSecret } from './restore.ts';
import { sweep } from './sweep.ts';

type Shape = (typeof sweepConfig)['shape'];

export const job: JobDefinition<Shape> = {
  name: 'secret-sweep',
  title: 'find leftover plaintext Kubernetes Secrets and tell which are already in Vault',
  description: `
Lists every Secret (page by page), classifies it (system, managed by a controller, ignored by
your rules, or a plaintext leftover), compares each leftover's values with Vault KV v2 by keyed
fingerprints (migrated only when one KV path holds every value and one of them is not a short or
common literal; partly migrated, unproven, not in Vault), finds everything that still names it
(pods, workload pod templates whatever their replicas, service accounts, Ingresses, StorageClasses,
Gateways, Flux sources, cert-manager issuers, Argo CD labels), and finds the copies people forget:
data kept in the last-applied-configuration annotation and Vault values kept in Helm release
records. Never prints, logs or exports a value. With --delete-migrated it deletes the migrated,
unused leftovers (never where a consumer kind could not be listed), each only after a verified
backup to Vault and with a uid/resourceVersion precondition; "restore" puts one back.`,
  commands: {
    sweep: 'sweep the cluster and report',
    restore: 'restore <namespace>/<name>: recreate a deleted Secret exactly from its Vault backup',
  },
  options: {
    'delete-migrated': { type: 'boolean', description: 'delete migrated, unused Secrets after a verified backup to Vault (with --dry-run: print the plan)' },
    'fail-on': { type: 'string', description: `comma-separated findings that make the run fail (exit 1): ${FAIL_ON.join(', ')}` },
    format: { type: 'string', description: 'what to print on stdout besides the log lines: table (default), json or none' },
    'report-file': { type: 'string', description: 'also write the JSON report to this file' },
    'backup-version': { type: 'string', description: 'restore: the KV version of the backup to restore (default: the latest)' },
  },
  config: sweepConfig,
  async run(ctx): Promise<JobResult> {
    const config = ctx.config as unknown as SweepConfig;
    const vault = await connectVault(config.vault, ctx);
    const kube = connectKube(config.kubernetes, ctx.log, ctx.signal);
    const backup = { mount: config.remediation.backupMount, path: config.remediation.backupPath };

    if (ctx.command === 'restore') {
      const target = parseTarget(ctx.positionals[0]);
      const v = ctx.options['backup-version'];
      const version = typeof v === 'string' ? Number(v) : undefined;
      if (version !== undefined && !(Number.isInteger(version) && version > 0)) throw new UsageError('--backup-version must be a positive whole number');
      const result = await restoreSecret(target, { kube, vault, backup, version, dryRun: ctx.dryRun, log: ctx.log, signal: ctx.signal });
      return { restore: result };
    }

    const failOn = parseFailOn(ctx.options['fail-on'], config.report.failOn);
    const format = (ctx.options.format as string | undefined) ?? config.report.format;
    if (!['table', 'json', 'none'].includes(format)) throw new UsageError('--format must be table, json or none');
    const deleteMigrated = Boolean(ctx.options['delete-migrated']) || config.remediation.deleteMigrated;

    const builder = await ReportBuilder.create();
    ctx.onCleanup(() => builder.dispose());
    const result = await sweep({ builder, config, kube, vault, deleteMigrated, failOn, dryRun: ctx.dryRun, log: ctx.log, signal: ctx.signal });
    const report = result.head;
    recordMetrics(ctx.metrics, report);

    const reportFile = (ctx.options['report-file'] as string | undefined) ?? config.report.file;
    if (reportFile) {
      const file = createWriteStream(reportFile, { mode: 0o640 });
      await writeJsonReport(result, file);
      file.end();
      await once(file, 'close');
    }
    // A report for a person, on purpose outside the log stream; it holds names and paths only.
    if (format === 'table') await writeTable(result, process.stdout);
    else if (format === 'json') await writeJsonReport(result, process.stdout);

    const failed = Object.keys(report.failOn.matched).length > 0 || report.remediation.failed > 0;
    if (Object.keys(report.failOn.matched).length) ctx.log.error({ matched: report.failOn.matched }, 'findings listed in --fail-on were found');
    return { outcome: failed ? 'failure' : 'success', ...summarize(report, reportFile) };
  },
};

function parseFailOn(cli: string | boolean | undefined, fromConfig: FailOn[]): FailOn[] {
  if (typeof cli !== 'string') return fromConfig;
  const items = cli
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.filter((i) => !(FAIL_ON as readonly string[]).includes(i));
  if (bad.length) throw new UsageError(`--fail-on: unknown finding ${bad.join(', ')}; expected some of ${FAIL_ON.join(', ')}`);
  return items as FailOn[];
}

/** The `finished` line's summary: counts only, so a log search finds each run's figures. */
function summarize(report: ReportHead, reportFile: string | undefined): Record<string, unknown> {
  return {
    secrets: report.totals.secrets,
    byClass: report.totals.byClass,
    leftovers: report.totals.leftovers,
    leftoversInUse: report.totals.leftoversInUse,
    migratedInUse: report.totals.migratedInUse,
    annotationCopies: report.totals.annotationCopies,
    helmRecordsWithVaultValues: report.totals.helmReleasesWithVaultValues,
    vaultUnreadablePaths: report.vault.unreadablePaths.length,
    // Consumer lists the apiserver refused: nothing of their scope was deleted.
    usageUnreadable: report.usage.unreadable.map((u) => `${u.kind}${u.namespace ? ` in ${u.namespace}` : ''}`),
    remediation: report.remediation,
    failOn: report.failOn,
    ...(reportFile ? { reportFile } : {}),
    // The figure the memory goal is about, from the process itself.
    maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}
