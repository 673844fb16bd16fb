import { defineConfig, field, mergeSpecs, z, type ConfigOf } from '@vaultkeeper/runtime';
import { KV_RECORD_FOLDERS, KV_RECORDS, isKvRecordPath } from '@vaultkeeper/records';
import { vaultConfig } from '@vaultkeeper/vault';

/** A Vault KV v2 location to compare against: `<mount>:<path prefix>`, e.g. `secret:apps/` (empty prefix: the whole mount). */
const kvSource = z
  .string({ error: 'must be <mount>:<path prefix>, e.g. secret:apps/' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.\-/]*:[A-Za-z0-9_.\-/]*$/, 'must be <mount>:<path prefix>, e.g. secret:apps/ or secret:');

const kvPathSegment = z.string().regex(/^[A-Za-z0-9_.\-/]+$/, 'must be a KV path such as vaultkeeper/secret-sweep/backup');

/**
 * A mapping target inside vaultkeeper's own records (@vaultkeeper/records KV_RECORD_FOLDERS), in
 * whichever mount: each job's KV mount is its own setting, which the sweep cannot see.
 */
const isOwnRecord = (target: string) => isKvRecordPath(target.slice(target.indexOf(':') + 1));

/** `<namespace>/<name>=<mount>:<path>`: the operator's word that this Secret moved to that KV secret. */
const kvMapping = z
  .string({ error: 'must be <namespace>/<name>=<mount>:<path>' })
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?=[A-Za-z0-9][A-Za-z0-9_.\-/]*:[A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]$/, 'must be <namespace>/<name>=<mount>:<path>, e.g. shop/db=secret:apps/shop/db')
  .refine((m) => !isOwnRecord(m.slice(m.indexOf('=') + 1)), "must not point into vaultkeeper's own records (secret:vaultkeeper/…)");

export const FAIL_ON = ['leftover', 'not-in-vault', 'partly-migrated', 'unproven', 'migrated', 'in-use', 'annotation-copy', 'helm-copy'] as const;
export type FailOn = (typeof FAIL_ON)[number];

export const sweepConfig = mergeSpecs(
  vaultConfig,
  defineConfig({
    shape: {
      kubernetes: z
        .strictObject({
          /** A kubeconfig file; without one the job uses its in-cluster service account. */
          kubeconfig: z.string().min(1).optional(),
          context: z.string().min(1).optional(),
          /**
           * Items per list request. The apiserver answers a paginated list from etcd (or its
           * watch cache) page by page, so the job never holds more than one page of Secrets.
           */
          pageSize: field.int(10, 5000).default(500),
          /** Per request, including the retries of a failed page. */
          requestDeadlineSeconds: field.seconds(1).default(60),
        })
        .default({ pageSize: 500, requestDeadlineSeconds: 60 }),
      /** Namespaces to sweep; empty means the whole cluster. */
      namespaces: field.list(field.nonEmpty()).default([]),
      vaultKv: z
        .strictObject({
          /** Where migrated values live. */
          sources: field.list(kvSource).default(['secret:']),
          /** Parallel KV reads while indexing. */
          concurrency: field.int(1, 64).default(8),
          /** Shorter values (bytes) are never evidence of migration on their own: they match by chance. */
          minValueLength: field.int(1, 1024).default(8),
          /** Literals that are never evidence on their own, besides the built-in ones (true, admin, localhost…). */
          commonValues: field.list(field.nonEmpty()).default([]),
          /** `<namespace>/<name>=<mount>:<path>`: compare that Secret with that KV secret only. */
          mappings: field.list(kvMapping).default([]),
          /** More subtrees never indexed, `<mount>:<prefix>` (where an install keeps vaultkeeper's records elsewhere). */
          exclude: field.list(kvSource).default([]),
        })
        .default({ sources: ['secret:'], concurrency: 8, minValueLength: 8, commonValues: [], mappings: [], exclude: [] }),
      ignore: z
        .strictObject({
          /** Glob patterns (`*`, `?`) of namespaces. */
          namespaces: field.list(field.nonEmpty()).default([]),
          /** Glob patterns of Secret names, or of `<namespace>/<name>`. */
          names: field.list(field.nonEmpty()).default([]),
          /** `key=value` or `key` (present with any value). */
          labels: field.list(field.nonEmpty()).default([]),
          /** A Secret carrying this annotation set to "true" is ignored. */
          annotation: field.nonEmpty().default('vaultkeeper.io/ignore'),
        })
        .default({ namespaces: [], names: [], labels: [], annotation: 'vaultkeeper.io/ignore' }),
      helm: z
        .strictObject({
          /** Shorter strings in a release (`true`, `80`, `admin`) match Vault by chance; they are not compared. */
          minValueLength: field.int(1, 1024).default(8),
          /** A release record inflates to at most this many bytes (Helm caps a record at 1 MiB compressed). */
          maxReleaseBytes: field.int(1024, 256 * 1024 * 1024).default(64 * 1024 * 1024),
        })
        .default({ minValueLength: 8, maxReleaseBytes: 64 * 1024 * 1024 }),
      remediation: z
        .strictObject({
          /** Delete Secrets that are migrated and unused (also `--delete-migrated`). */
          deleteMigrated: field.bool().default(false),
          /** A run deletes at most this many; the rest wait for the next run. */
          maxDeletes: field.int(1, 10_000).default(100),
          backupMount: field.nonEmpty().default('secret'),
          backupPath: kvPathSegment.default(KV_RECORDS.secretSweepBackup),
        })
        .default({ deleteMigrated: false, maxDeletes: 100, backupMount: 'secret', backupPath: KV_RECORDS.secretSweepBackup }),
      report: z
        .strictObject({
          /** What goes to stdout besides the log lines: a table, the JSON report, or nothing. */
          format: z.enum(['table', 'json', 'none']).default('table'),
          /** Also write the JSON report to this file. */
          file: z.string().min(1).optional(),
          /** Findings that make the run fail (exit 1); also `--fail-on`. Empty: report only. */
          failOn: field.list(z.enum(FAIL_ON)).default([]),
        })
        .default({ format: 'table', failOn: [] }),
    },
    env: {
      KUBECONFIG: { path: 'kubernetes.kubeconfig', doc: 'kubeconfig file (default: in-cluster service account)' },
      SWEEP_KUBE_CONTEXT: { path: 'kubernetes.context', doc: 'kubeconfig context (default: its current-context)' },
      SWEEP_PAGE_SIZE: { path: 'kubernetes.pageSize', doc: 'items per list request (default 500)' },
      SWEEP_KUBE_DEADLINE: { path: 'kubernetes.requestDeadlineSeconds', doc: 'deadline of one Kubernetes call with its retries (default 60s)' },
      SWEEP_NAMESPACES: { path: 'namespaces', doc: 'comma-separated namespaces to sweep (default: all)' },
      SWEEP_KV_SOURCES: { path: 'vaultKv.sources', doc: 'comma-separated <mount>:<prefix> KV v2 locations to compare with (default secret:)' },
      SWEEP_KV_CONCURRENCY: { path: 'vaultKv.concurrency', doc: 'parallel KV reads while indexing (default 8)' },
      SWEEP_MIN_VALUE_LENGTH: { path: 'vaultKv.minValueLength', doc: 'shortest value (bytes) that counts as evidence of migration on its own (default 8)' },
      SWEEP_COMMON_VALUES: { path: 'vaultKv.commonValues', doc: 'comma-separated literals never counted as evidence, besides true, false, numbers, admin, localhost…' },
      SWEEP_KV_MAPPINGS: { path: 'vaultKv.mappings', doc: 'comma-separated <namespace>/<name>=<mount>:<path>: the KV secret a Secret moved to' },
      SWEEP_KV_EXCLUDE: { path: 'vaultKv.exclude', doc: "comma-separated <mount>:<prefix> never indexed, besides the backups and vaultkeeper's own records" },
      SWEEP_IGNORE_NAMESPACES: { path: 'ignore.namespaces', doc: 'comma-separated namespace globs to ignore' },
      SWEEP_IGNORE_NAMES: { path: 'ignore.names', doc: 'comma-separated name or namespace/name globs to ignore' },
      SWEEP_IGNORE_LABELS: { path: 'ignore.labels', doc: 'comma-separated key=value or key label rules to ignore' },
      SWEEP_IGNORE_ANNOTATION: { path: 'ignore.annotation', doc: 'annotation that, set to "true", ignores a Secret (default vaultkeeper.io/ignore)' },
      SWEEP_HELM_MIN_VALUE_LENGTH: { path: 'helm.minValueLength', doc: 'shortest Helm release string compared with Vault (default 8)' },
      SWEEP_DELETE_MIGRATED: { path: 'remediation.deleteMigrated', doc: 'delete migrated, unused Secrets after backing them up (default false)' },
      SWEEP_MAX_DELETES: { path: 'remediation.maxDeletes', doc: 'most Secrets deleted in one run (default 100)' },
      SWEEP_BACKUP_MOUNT: { path: 'remediation.backupMount', doc: 'KV v2 mount of the backups (default secret)' },
      SWEEP_BACKUP_PATH: { path: 'remediation.backupPath', doc: 'path of the backups in that mount (default vaultkeeper/secret-sweep/backup)' },
      SWEEP_REPORT_FORMAT: { path: 'report.format', doc: 'table, json or none on stdout (default table)' },
      SWEEP_REPORT_FILE: { path: 'report.file', doc: 'also write the JSON report to this file' },
      SWEEP_FAIL_ON: { path: 'report.failOn', doc: `comma-separated findings that fail the run: ${FAIL_ON.join(', ')} (default none)` },
    },
  }),
);

export type SweepConfig = ConfigOf<typeof sweepConfig> & { vault: ConfigOf<typeof vaultConfig>['vault'] };

export interface KvSource {
  mount: string;
  /** '' or ending in '/': a folder; otherwise one secret or a name prefix. */
  prefix: string;
}

export function parseKvSource(s: string): KvSource {
  const i = s.indexOf(':');
  return { mount: s.slice(0, i).replace(/\/+$/, ''), prefix: s.slice(i + 1).replace(/^\/+/, '') };
}

/** `ns/name=mount:path` entries as a map from `ns/name` to the logical path `mount/path`. */
export function parseMappings(mappings: string[]): Map<string, { source: KvSource; logical: string }> {
  const out = new Map<string, { source: KvSource; logical: string }>();
  for (const m of mappings) {
    const eq = m.indexOf('=');
    const source = parseKvSource(m.slice(eq + 1));
    out.set(m.slice(0, eq), { source, logical: `${source.mount}/${source.prefix}` });
  }
  return out;
}

/**
 * What the Vault index must skip: copies of credentials kept by vaultkeeper itself are never
 * evidence of a migration. The sweep's backup path; every job's record folder in every mount the
 * sources read (the other jobs' KV mount is their own setting, so each mount may hold them); and
 * `vaultKv.exclude`, for an install that moved the records to other paths.
 */
export function ownRecordExcludes(vaultKv: { sources: string[]; exclude: string[] }, backup: { mount: string; path: string }): KvSource[] {
  const mounts = [...new Set(vaultKv.sources.map((s) => parseKvSource(s).mount))];
  return [
    { mount: backup.mount, prefix: backup.path.replace(/^\/+|\/+$/g, '') },
    ...mounts.flatMap((mount) => KV_RECORD_FOLDERS.map((f) => ({ mount, prefix: f.replace(/\/+$/, '') }))),
    ...vaultKv.exclude.map(parseKvSource).map((e) => ({ ...e, prefix: e.prefix.replace(/\/+$/, '') })),
  ];
}
