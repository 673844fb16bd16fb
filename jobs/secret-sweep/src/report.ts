import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { JobMetrics } from '@vaultkeeper/runtime';
import { SECRET_CLASSES, type SecretClass } from './classify-secret.ts';
import type { FailOn } from './config.ts';
import type { UsageEntry } from './find-usage.ts';
import type { HelmReleaseInfo } from './helm-release.ts';
import { MIGRATION_STATUSES, type MigrationResult, type MigrationStatus } from './vault-index.ts';
import type { UnreadableKind } from './find-usage.ts';

/** Version of the JSON report's shape (docs/secret-sweep.md). Bump on any incompatible change. */
export const REPORT_API_VERSION = 'vaultkeeper.io/secret-sweep/v1';
const STATUSES = MIGRATION_STATUSES;

export interface SecretEntry {
  namespace: string;
  name: string;
  type: string;
  class: SecretClass;
  rule: string;
  reason: string;
  /** Leftovers only from here on: key names, where the values are in Vault, who uses it. */
  keys?: string[];
  vault?: MigrationResult;
  inUse?: boolean;
  usedBy?: UsageEntry;
  /** Consumer kinds that could not be listed for its namespace: it may be in use, so it is never deleted. */
  usageUnknown?: string[];
  /** Migrated, unused, owned by nothing: what --delete-migrated may remove. */
  deletable?: boolean;
  advice?: string;
  /** Any class: data kept in the last-applied-configuration annotation. */
  annotationCopy?:
    | {
        dataKeys: string[];
        stringDataKeys: string[];
        /** The annotation holds values the Secret's data no longer has. */
        differsFromData: boolean;
        vault: { status: MigrationStatus; path?: string; missingKeys: string[] };
        advice: string;
      }
    | { unparseable: true };
  /** Helm release records: which of their strings are values now in Vault. */
  helmRelease?: (HelmReleaseInfo & { valuesInVault: number; locations: Array<{ where: string; path: string; field: string }>; unparsed?: string[] }) | { error: string };
  action?: RemediationAction;
}

export interface RemediationAction {
  action: 'deleted' | 'would-delete' | 'refused' | 'skipped' | 'failed';
  reason?: string;
  backupPath?: string;
  backupVersion?: number;
}

/** Everything of the report but the per-Secret list, which stays on disk (see ReportBuilder). */
export interface ReportHead {
  apiVersion: typeof REPORT_API_VERSION;
  generatedAt: string;
  cluster: string;
  scope: { namespaces: string[] | 'all' };
  vault: { sources: string[]; secretsIndexed: number; valuesIndexed: number; unreadablePaths: string[] };
  /** Consumers read: objects per kind, kinds refused (their scope's Secrets are not deleted), CRDs absent. */
  usage: { pods: number; serviceAccounts: number; objects: Record<string, number>; unreadable: UnreadableKind[]; absent: string[] };
  totals: {
    secrets: number;
    byClass: Record<SecretClass, number>;
    leftovers: Record<MigrationStatus, number>;
    leftoversInUse: number;
    migratedInUse: number;
    annotationCopies: number;
    helmReleasesWithVaultValues: number;
  };
  byNamespace: Record<string, Record<SecretClass, number>>;
  remediation: { enabled: boolean; dryRun: boolean; planned: number; deleted: number; refused: number; failed: number; pending: number };
  failOn: { conditions: FailOn[]; matched: Partial<Record<FailOn, number>> };
}

/** The JSON report as written: the head, and `secrets`, one entry per Secret in list order. */
export type SweepReport = ReportHead & { secrets: SecretEntry[] };

/** A finished sweep: the head in memory, the entries in a spool file, remediation results by Secret. */
export interface SweepResult {
  head: ReportHead;
  spool: string;
  actions: Map<string, RemediationAction>;
  /** Widths of the table's fixed columns, measured while spooling. */
  widths: number[];
  /** For deletable entries that were not even considered (over remediation.maxDeletes). */
  pendingAction?: RemediationAction;
}

const zeroClasses = () => Object.fromEntries(SECRET_CLASSES.map((c) => [c, 0])) as Record<SecretClass, number>;

/**
 * Counts entries and spools them to a file, one JSON line each, so that memory stays bounded by
 * the page size, not by the number of Secrets: 20,000 entries held in memory cost the heap
 * (and, through V8's young-generation sizing, the RSS) far more than their bytes. The apiserver
 * lists in key order (namespace, then name), so the spool is already in the report's order.
 */
export class ReportBuilder {
  private out!: WriteStream;
  private counts = this.zero();
  readonly widths = TABLE_HEAD.slice(0, -1).map((h) => h.length);

  private constructor(
    readonly dir: string,
    readonly spool: string,
  ) {
    this.open();
  }

  static async create(): Promise<ReportBuilder> {
    const dir = await mkdtemp(join(tmpdir(), 'vaultkeeper-secret-sweep-'));
    return new ReportBuilder(dir, join(dir, 'entries.ndjson'));
  }

  private zero() {
    return {
      secrets: 0,
      byClass: zeroClasses(),
      leftovers: Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<MigrationStatus, number>,
      byNamespace: {} as Record<string, Record<SecretClass, number>>,
      leftoversInUse: 0,
      migratedInUse: 0,
      annotationCopies: 0,
      helmReleasesWithVaultValues: 0,
    };
  }

  private open(): void {
    this.out = createWriteStream(this.spool, { flags: 'w', mode: 0o600 });
  }

  get count(): number {
    return this.counts.secrets;
  }

  async add(e: SecretEntry): Promise<void> {
    const c = this.counts;
    c.secrets++;
    c.byClass[e.class]++;
    (c.byNamespace[e.namespace] ??= zeroClasses())[e.class]++;
    if (e.vault) c.leftovers[e.vault.status]++;
    if (e.inUse) c.leftoversInUse++;
    if (e.inUse && e.vault?.status === 'migrated') c.migratedInUse++;
    if (isCopy(e)) c.annotationCopies++;
    if (holdsVaultValues(e)) c.helmReleasesWithVaultValues++;
    if (isFinding(e)) tableCells(e).forEach((cell, i) => (this.widths[i] = Math.min(60, Math.max(this.widths[i]!, cell.length))));
    if (!this.out.write(JSON.stringify(e) + '\n')) await once(this.out, 'drain');
  }

  /** A list started over: forget everything spooled so far. */
  async reset(): Promise<void> {
    await this.close();
    this.counts = this.zero();
    this.widths.forEach((_, i) => (this.widths[i] = TABLE_HEAD[i]!.length));
    this.open();
  }

  private async close(): Promise<void> {
    if (this.out.closed) return;
    this.out.end();
    await once(this.out, 'close');
  }

  async finish(
    base: Pick<ReportHead, 'cluster' | 'scope' | 'vault' | 'usage' | 'remediation'> & {
      failOn: FailOn[];
      actions: Map<string, RemediationAction>;
      pendingAction?: RemediationAction;
    },
  ): Promise<SweepResult> {
    await this.close();
    const { byNamespace, secrets, byClass, leftovers, leftoversInUse, migratedInUse, annotationCopies, helmReleasesWithVaultValues } = this.counts;
    const count: Record<FailOn, number> = {
      leftover: byClass.leftover,
      'not-in-vault': leftovers['not-in-vault'],
      'partly-migrated': leftovers['partly-migrated'],
      unproven: leftovers.unproven,
      migrated: leftovers.migrated,
      'in-use': leftoversInUse,
      'annotation-copy': annotationCopies,
      'helm-copy': helmReleasesWithVaultValues,
    };
    const matched: Partial<Record<FailOn, number>> = {};
    for (const c of base.failOn) if (count[c] > 0) matched[c] = count[c];
    const head: ReportHead = {
      apiVersion: REPORT_API_VERSION,
      generatedAt: new Date().toISOString(),
      cluster: base.cluster,
      scope: base.scope,
      vault: base.vault,
      usage: base.usage,
      totals: { secrets, byClass, leftovers, leftoversInUse, migratedInUse, annotationCopies, helmReleasesWithVaultValues },
      byNamespace,
      remediation: base.remediation,
      failOn: { conditions: base.failOn, matched },
    };
    return { head, spool: this.spool, actions: base.actions, widths: this.widths, ...(base.pendingAction ? { pendingAction: base.pendingAction } : {}) };
  }

  async dispose(): Promise<void> {
    await this.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The spooled entries, with remediation results merged in. */
export async function* entries(result: SweepResult): AsyncGenerator<SecretEntry> {
  const lines = createInterface({ input: createReadStream(result.spool, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line) continue;
    const e = JSON.parse(line) as SecretEntry;
    const action = result.actions.get(`${e.namespace}/${e.name}`) ?? (e.deletable ? result.pendingAction : undefined);
    if (action) e.action = action;
    yield e;
  }
}

async function write(out: NodeJS.WritableStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out as unknown as WriteStream, 'drain');
}

/** Writes the JSON report (the head pretty-printed, then one Secret per line) without building it in memory. */
export async function writeJsonReport(result: SweepResult, out: NodeJS.WritableStream): Promise<void> {
  const head = JSON.stringify(result.head, null, 2);
  await write(out, `${head.slice(0, -2)},\n  "secrets": [`);
  let first = true;
  for await (const e of entries(result)) {
    await write(out, `${first ? '' : ','}\n    ${JSON.stringify(e)}`);
    first = false;
  }
  await write(out, `${first ? '' : '\n  '}]\n}\n`);
}

function isCopy(e: SecretEntry): boolean {
  return e.annotationCopy !== undefined && !('unparseable' in e.annotationCopy);
}

function holdsVaultValues(e: SecretEntry): boolean {
  return e.helmRelease !== undefined && 'valuesInVault' in e.helmRelease && e.helmRelease.valuesInVault > 0;
}

/** Findings worth a person's attention: every leftover, any Secret keeping a copy, anything remediation touched. */
export function isFinding(e: SecretEntry): boolean {
  return e.class === 'leftover' || isCopy(e) || holdsVaultValues(e) || e.action !== undefined;
}

const TABLE_HEAD = ['SECRET', 'CLASS', 'VAULT', 'VAULT PATH', 'IN USE', 'NOTE'];

function tableCells(e: SecretEntry): string[] {
  const helm = e.helmRelease && 'valuesInVault' in e.helmRelease ? e.helmRelease : undefined;
  return [
    `${e.namespace}/${e.name}`,
    e.class,
    e.vault ? e.vault.status : helm ? `helm r${helm.revision}` : '-',
    e.vault?.path ?? (helm ? `${helm.valuesInVault} values in Vault` : '-'),
    e.class === 'leftover' ? (e.inUse ? `yes (${e.usedBy?.count ?? 0})` : 'no') : '-',
  ];
}

/** The table for a person: counts, then one row per finding. Names and paths only. */
export async function writeTable(result: SweepResult, out: NodeJS.WritableStream): Promise<void> {
  const { head } = result;
  const t = head.totals;
  const lines: string[] = [];
  lines.push(`Secret sweep of ${head.cluster} (${head.scope.namespaces === 'all' ? 'all namespaces' : head.scope.namespaces.join(', ')})`);
  lines.push(
    `  ${t.secrets} Secrets: ${SECRET_CLASSES.map((c) => `${t.byClass[c]} ${c}`).join(', ')}; ` +
      `Vault index: ${head.vault.secretsIndexed} KV secrets, ${head.vault.valuesIndexed} values` +
      (head.vault.unreadablePaths.length ? ` (${head.vault.unreadablePaths.length} paths not readable)` : ''),
  );
  lines.push(
    `  leftovers: ${STATUSES.map((s) => `${t.leftovers[s]} ${s}`).join(', ')}; ${t.leftoversInUse} in use (${t.migratedInUse} of them migrated); ` +
      `${t.annotationCopies} annotation copies; ${t.helmReleasesWithVaultValues} Helm records holding Vault values`,
  );
  if (head.usage.unreadable.length) {
    const what = head.usage.unreadable.map((u) => `${u.kind} (${u.namespace ?? 'all namespaces'}: ${u.status})`);
    lines.push(`  could not list ${what.join(', ')}: nothing is deleted where these may use a Secret`);
  }
  await write(out, lines.join('\n') + '\n\n');
  const fmt = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(result.widths[i]!))).join('  ');
  let rows = 0;
  for await (const e of entries(result)) {
    if (!isFinding(e)) continue;
    if (rows++ === 0) await write(out, fmt(TABLE_HEAD) + '\n');
    const note = [e.advice, isCopy(e) ? (e.annotationCopy as { advice: string }).advice : undefined, e.action ? `${e.action.action}${e.action.reason ? `: ${e.action.reason}` : ''}` : undefined]
      .filter(Boolean)
      .join('; ');
    await write(out, fmt([...tableCells(e), note]) + '\n');
  }
  if (rows === 0) await write(out, 'No leftover plaintext Secrets.\n');
  const tail: string[] = [];
  const r = head.remediation;
  if (r.enabled) tail.push(`Remediation${r.dryRun ? ` (dry run): ${r.planned} would be deleted,` : ':'} ${r.deleted} deleted, ${r.refused} refused, ${r.failed} failed, ${r.pending} left for the next run`);
  const matched = Object.entries(head.failOn.matched);
  if (matched.length) tail.push(`Failing on: ${matched.map(([k, v]) => `${k} (${v})`).join(', ')}`);
  if (tail.length) await write(out, '\n' + tail.join('\n') + '\n');
}

/** Counts per class and per namespace for the Pushgateway (the runtime pushes them once at the end). */
export function recordMetrics(metrics: JobMetrics, head: ReportHead): void {
  const byClass = metrics.gauge('secrets', 'Secrets seen in the last run, by class.', ['class']);
  for (const c of SECRET_CLASSES) byClass.set({ class: c }, head.totals.byClass[c]);
  // Zero series are left out: 500 namespaces times 4 classes of mostly zeros helps nobody.
  const byNs = metrics.gauge('namespace_secrets', 'Secrets seen in the last run, by namespace and class (non-zero only).', ['namespace', 'class']);
  for (const [ns, counts] of Object.entries(head.byNamespace)) for (const c of SECRET_CLASSES) if (counts[c]) byNs.set({ namespace: ns, class: c }, counts[c]);
  const leftovers = metrics.gauge('leftovers', 'Leftover plaintext Secrets by where their values are in Vault.', ['status']);
  for (const s of STATUSES) leftovers.set({ status: s }, head.totals.leftovers[s]);
  metrics.gauge('leftovers_in_use', 'Leftover Secrets still referenced by a workload, pod, service account or other consumer.').set(head.totals.leftoversInUse);
  metrics.gauge('migrated_in_use', 'Migrated leftovers the app still reads.').set(head.totals.migratedInUse);
  metrics.gauge('annotation_copies', 'Secrets whose last-applied-configuration annotation holds data.').set(head.totals.annotationCopies);
  metrics.gauge('helm_records_with_vault_values', 'Helm release records holding a value that is in Vault.').set(head.totals.helmReleasesWithVaultValues);
  metrics.gauge('vault_unreadable_paths', 'KV paths the policy did not let the sweep read.').set(head.vault.unreadablePaths.length);
  metrics.gauge('usage_unreadable_lists', 'Consumer lists (kind, namespace) the apiserver refused: their Secrets are not deleted.').set(head.usage.unreadable.length);
  const rem = metrics.gauge('remediation', 'Remediation in the last run, by result.', ['result']);
  rem.set({ result: 'deleted' }, head.remediation.deleted);
  rem.set({ result: 'refused' }, head.remediation.refused);
  rem.set({ result: 'failed' }, head.remediation.failed);
}
