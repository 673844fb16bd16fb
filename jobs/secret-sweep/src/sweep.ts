import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from '@vaultkeeper/runtime';
import type { VaultClient } from '@vaultkeeper/vault';
import { ownRecordExcludes, parseKvSource, parseMappings, type FailOn, type SweepConfig } from './config.ts';
import { Fingerprinter } from './fingerprint.ts';
import { findUsage } from './find-usage.ts';
import { inspectSecret } from './inspect-secret.ts';
import type { Kube } from './kube.ts';
import { listSecrets } from './list-secrets.ts';
import { remediate, type Candidate } from './remediate.ts';
import type { RemediationAction, ReportBuilder, SweepResult } from './report.ts';
import { buildVaultIndex } from './vault-index.ts';

export interface SweepOptions {
  /** Where the entries are spooled; the caller disposes of it once the report is written. */
  builder: ReportBuilder;
  config: SweepConfig;
  kube: Kube;
  vault: VaultClient;
  deleteMigrated: boolean;
  failOn: FailOn[];
  dryRun: boolean;
  log: Logger;
  signal?: AbortSignal;
}

/**
 * One sweep: who uses which Secret (every consumer kind), what Vault holds (fingerprints),
 * then every Secret page by page, each inspected, spooled and dropped before the next page.
 */
export async function sweep(opts: SweepOptions): Promise<SweepResult> {
  const { builder, config, kube, vault, log } = opts;
  const pageSize = config.kubernetes.pageSize;
  const started = Date.now();

  const usage = await findUsage(kube, config.namespaces, pageSize, log);
  log.info(
    { objects: usage.objects, unreadable: usage.unreadable.length, absent: usage.absent, ms: Date.now() - started },
    'read the references of every consumer of Secrets',
  );

  const backup = { mount: config.remediation.backupMount, path: config.remediation.backupPath };
  const mappings = parseMappings(config.vaultKv.mappings);
  const index = await buildVaultIndex(vault, {
    sources: config.vaultKv.sources.map(parseKvSource),
    exclude: ownRecordExcludes(config.vaultKv, backup),
    paths: [...mappings.values()].map((m) => m.source),
    evidence: { minValueLength: config.vaultKv.minValueLength, commonValues: config.vaultKv.commonValues },
    concurrency: config.vaultKv.concurrency,
    fp: new Fingerprinter(),
    log,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  log.info({ kvSecrets: index.secretsRead, kvValues: index.valuesIndexed, unreadable: index.unreadable.length, ms: Date.now() - started }, 'indexed Vault KV');

  const ctx = {
    classify: { ignore: config.ignore, injectorPodFor: (ns: string, name: string) => usage.injectorPodFor(ns, name) },
    usage,
    index,
    helm: config.helm,
    mappings,
  };
  // Only as many candidates as one run may delete are kept; the rest are counted and wait.
  const maxDeletes = config.remediation.maxDeletes;
  let candidates: Candidate[] = [];
  let overflow = 0;
  for await (const page of listSecrets(kube, config.namespaces, pageSize, log)) {
    if (page.restarted) {
      await builder.reset();
      candidates = [];
      overflow = 0;
    }
    const items = page.items as Array<V1Secret | undefined>;
    for (let i = 0; i < items.length; i++) {
      // Let each Secret go as soon as it is inspected: a page held whole while it is worked
      // through survives scavenges, and V8 answers that by growing the young generation.
      const secret = items[i]!;
      items[i] = undefined;
      const { entry, deletable } = inspectSecret(secret, ctx);
      await builder.add(entry);
      if (deletable && candidates.length >= maxDeletes) overflow++;
      else if (deletable) {
        candidates.push({ namespace: entry.namespace, name: entry.name, uid: secret.metadata?.uid ?? '', resourceVersion: secret.metadata?.resourceVersion ?? '' });
      }
    }
  }
  log.info({ secrets: builder.count, deletable: candidates.length + overflow, ms: Date.now() - started }, 'classified Secrets');

  let remediation = { enabled: opts.deleteMigrated, dryRun: opts.dryRun, planned: 0, deleted: 0, refused: 0, failed: 0, pending: 0 };
  let actions = new Map<string, RemediationAction>();
  if (opts.deleteMigrated) {
    const { actions: done, ...summary } = await remediate(candidates, {
      kube,
      vault,
      backup,
      maxDeletes,
      pageSize,
      // The re-check reads the same consumers in the same scope as the sweep did.
      namespaces: config.namespaces,
      dryRun: opts.dryRun,
      log,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    remediation = { ...remediation, ...summary, pending: summary.pending + overflow };
    actions = done;
  }

  return builder.finish({
    cluster: kube.server,
    scope: { namespaces: config.namespaces.length ? config.namespaces : 'all' },
    vault: {
      sources: config.vaultKv.sources,
      secretsIndexed: index.secretsRead,
      valuesIndexed: index.valuesIndexed,
      unreadablePaths: index.unreadable,
    },
    usage: { pods: usage.pods, serviceAccounts: usage.serviceAccounts, objects: usage.objects, unreadable: usage.unreadable, absent: usage.absent },
    remediation,
    failOn: opts.failOn,
    actions,
    ...(opts.deleteMigrated && overflow ? { pendingAction: { action: 'skipped', reason: `over remediation.maxDeletes (${maxDeletes}); left for the next run` } } : {}),
  });
}
