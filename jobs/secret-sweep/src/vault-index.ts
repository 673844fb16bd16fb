import { z, type Logger } from '@vaultkeeper/runtime';
import { VaultError, type VaultClient } from '@vaultkeeper/vault';
import { createLimiter } from './concurrency.ts';
import type { KvSource } from './config.ts';
import { secretValueFingerprints, type Fingerprinter } from './fingerprint.ts';

/** Where a value sits in Vault: the logical KV path (`secret/apps/db`) and the field in its data. */
export interface VaultLocation {
  path: string;
  field: string;
}

export type MigrationStatus = 'migrated' | 'partly-migrated' | 'unproven' | 'not-in-vault' | 'empty';
export const MIGRATION_STATUSES: MigrationStatus[] = ['migrated', 'partly-migrated', 'unproven', 'not-in-vault', 'empty'];

export interface MigrationResult {
  status: MigrationStatus;
  /** The one Vault path that holds every value, when there is one. */
  path?: string;
  /** Per key, where its value was found (names only, never values). */
  found: Array<{ key: string; path: string; field: string }>;
  missingKeys: string[];
  /** Keys whose value is empty: nothing to migrate, so they count neither way. */
  emptyKeys: string[];
  /** Keys whose value is too short or too common to prove anything on its own. */
  weakKeys: string[];
  /** What made it migrated: the fingerprint search, or the operator's mapping (`vaultKv.mappings`). */
  evidence?: 'fingerprint' | 'mapping';
  /** The path the operator mapped this Secret to; only that path counts then. */
  mappedTo?: string;
}

/**
 * Literals that sit in countless configs: finding one in Vault proves nothing. Numbers of any
 * length are weak too. Compared case-insensitively, after trimming.
 */
export const COMMON_LITERALS = [
  'true', 'false', 'yes', 'no', 'on', 'off', 'null', 'none', 'nil', 'undefined', 'enabled', 'disabled',
  'admin', 'administrator', 'root', 'user', 'username', 'guest', 'test', 'testing', 'demo', 'example', 'default',
  'password', 'changeme', 'secret', 'localhost', '127.0.0.1', '::1', '0.0.0.0',
  'postgres', 'postgresql', 'mysql', 'redis', 'http', 'https', 'tcp', 'udp',
  'debug', 'info', 'warn', 'error', 'production', 'staging', 'development', 'dev', 'prod',
];

export interface EvidenceRules {
  /** Values shorter than this (bytes) are weak. */
  minValueLength: number;
  /** Added to COMMON_LITERALS. */
  commonValues: string[];
}

/**
 * Fingerprints of every value under the configured KV v2 paths, with where each sits. Holds no
 * value: only keyed fingerprints (see fingerprint.ts) and path/field names.
 */
export class VaultIndex {
  private readonly byFingerprint = new Map<string, VaultLocation[]>();
  private readonly common: Set<string>;
  private readonly minValueLength: number;
  secretsRead = 0;
  valuesIndexed = 0;
  /** Paths the policy did not let us list or read: a value there looks "not in Vault". */
  readonly unreadable: string[] = [];

  constructor(
    readonly fp: Fingerprinter,
    rules: EvidenceRules = { minValueLength: 8, commonValues: [] },
  ) {
    this.minValueLength = rules.minValueLength;
    this.common = new Set([...COMMON_LITERALS, ...rules.commonValues].map((v) => v.trim().toLowerCase()));
  }

  /** Too short or too common to be evidence of anything on its own. */
  isWeak(value: Buffer | string): boolean {
    const length = typeof value === 'string' ? Buffer.byteLength(value) : value.length;
    if (length < this.minValueLength) return true;
    // Long values are never common literals; skip decoding them.
    if (length > 64) return false;
    const text = (typeof value === 'string' ? value : value.toString('utf8')).trim().toLowerCase();
    return this.common.has(text) || /^[-+]?\d+(\.\d+)?$/.test(text);
  }

  addValue(path: string, field: string, value: string): void {
    // An empty value is no evidence of anything.
    if (value === '') return;
    const key = this.fp.of(value);
    const list = this.byFingerprint.get(key);
    if (list) {
      if (!list.some((l) => l.path === path && l.field === field)) list.push({ path, field });
    } else this.byFingerprint.set(key, [{ path, field }]);
    this.valuesIndexed++;
  }

  /** Adds every leaf of a KV secret's data; nested objects and arrays are named `a.b` and `a[0]`. */
  addSecret(path: string, data: Record<string, unknown>): void {
    this.secretsRead++;
    const walk = (field: string, value: unknown): void => {
      if (typeof value === 'string') this.addValue(path, field, value);
      else if (typeof value === 'number' || typeof value === 'boolean') this.addValue(path, field, String(value));
      else if (Array.isArray(value)) value.forEach((v, i) => walk(`${field}[${i}]`, v));
      else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(`${field}.${k}`, v);
    };
    for (const [k, v] of Object.entries(data)) walk(k, v);
  }

  /** Where a Kubernetes Secret value (raw bytes) sits in Vault, as itself or base64-encoded. */
  locate(bytes: Buffer): VaultLocation[] {
    const out: VaultLocation[] = [];
    for (const f of secretValueFingerprints(this.fp, bytes)) for (const loc of this.byFingerprint.get(f) ?? []) out.push(loc);
    return out;
  }

  /** Where a text value (a Helm value, a stringData entry) sits in Vault. */
  locateText(text: string): VaultLocation[] {
    return this.byFingerprint.get(this.fp.of(text)) ?? [];
  }

  /**
   * Compares a Secret's values, key by key, with the index. "Migrated" is evidence, not
   * coincidence: one KV path holds every non-empty value (key names may differ) and at least one
   * of them is not weak (short, a number, a common literal), or the operator mapped the Secret
   * to a path that holds them all. Values spread over several paths are partly migrated at best.
   */
  compare(values: Array<{ key: string; bytes: Buffer }>, mappedTo?: string): MigrationResult {
    const emptyKeys: string[] = [];
    const perKey: Array<{ key: string; weak: boolean; locations: VaultLocation[] }> = [];
    for (const { key, bytes } of values) {
      if (bytes.length === 0) emptyKeys.push(key);
      else {
        const all = this.locate(bytes);
        perKey.push({ key, weak: this.isWeak(bytes), locations: mappedTo === undefined ? all : all.filter((l) => l.path === mappedTo) });
      }
    }
    const weakKeys = perKey.filter((k) => k.weak).map((k) => k.key);
    const coverage = new Map<string, { keys: number; sameName: number }>();
    for (const { key, locations } of perKey) {
      for (const path of new Set(locations.map((l) => l.path))) {
        const c = coverage.get(path) ?? { keys: 0, sameName: 0 };
        c.keys++;
        if (locations.some((l) => l.path === path && l.field === key)) c.sameName++;
        coverage.set(path, c);
      }
    }
    const rank = (path: string) => coverage.get(path) ?? { keys: 0, sameName: 0 };
    const better = (a: string, b: string) => {
      const ra = rank(a);
      const rb = rank(b);
      return ra.keys !== rb.keys ? ra.keys - rb.keys : ra.sameName !== rb.sameName ? ra.sameName - rb.sameName : b < a ? -1 : 1;
    };
    const best = [...coverage.keys()].reduce<string | undefined>((acc, p) => (acc === undefined || better(p, acc) > 0 ? p : acc), undefined);

    const found: MigrationResult['found'] = [];
    const missingKeys: string[] = [];
    for (const { key, locations } of perKey) {
      if (locations.length === 0) {
        missingKeys.push(key);
        continue;
      }
      // Prefer the best path, then the same field name, then the path that holds most of this Secret.
      const pick = [...locations].sort(
        (a, b) =>
          Number(b.path === best) - Number(a.path === best) ||
          Number(b.field === key) - Number(a.field === key) ||
          better(b.path, a.path),
      )[0]!;
      found.push({ key, path: pick.path, field: pick.field });
    }
    const together = best !== undefined && perKey.length > 0 && rank(best).keys === perKey.length;
    const base = { found, missingKeys, emptyKeys, weakKeys, ...(mappedTo !== undefined ? { mappedTo } : {}) };
    if (perKey.length === 0) return { status: 'empty', ...base };
    if (mappedTo !== undefined) {
      // The operator's word for where it went: that path holding every value is the evidence.
      if (together) return { status: 'migrated', path: mappedTo, evidence: 'mapping', ...base };
      return { status: found.length === 0 ? 'not-in-vault' : 'partly-migrated', ...base };
    }
    const strongFound = perKey.some((k) => !k.weak && k.locations.length > 0);
    if (weakKeys.length === perKey.length) {
      return { status: found.length === 0 ? 'not-in-vault' : 'unproven', ...(together ? { path: best } : {}), ...base };
    }
    if (together) return { status: 'migrated', path: best, evidence: 'fingerprint', ...base };
    return { status: strongFound ? 'partly-migrated' : 'not-in-vault', ...base };
  }
}

const kvRead = z.object({ data: z.record(z.string(), z.unknown()).nullable() }).loose();

export interface BuildIndexOptions {
  sources: KvSource[];
  /** Subtrees never indexed (the job's own backups, which hold copies of the Secrets themselves). */
  exclude: KvSource[];
  /** Single secrets read besides the sources (the paths of `vaultKv.mappings`). */
  paths?: KvSource[];
  evidence?: EvidenceRules;
  concurrency: number;
  fp: Fingerprinter;
  log: Logger;
  signal?: AbortSignal;
}

/**
 * Walks KV v2 under each source (LIST on <mount>/metadata/..., GET on <mount>/data/...) and
 * fingerprints the current version of every secret. A deleted or destroyed latest version
 * answers 404 and counts as absent: the value is no longer where an app would read it.
 */
export async function buildVaultIndex(vault: VaultClient, opts: BuildIndexOptions): Promise<VaultIndex> {
  const index = new VaultIndex(opts.fp, opts.evidence);
  const limit = createLimiter(opts.concurrency);
  const seen = new Set<string>();
  const excluded = (mount: string, path: string) =>
    opts.exclude.some((e) => e.mount === mount && (path === e.prefix || path.startsWith(e.prefix.endsWith('/') ? e.prefix : `${e.prefix}/`)));

  const denied = (err: unknown, what: string): boolean => {
    if (err instanceof VaultError && err.status === 403) {
      index.unreadable.push(what);
      opts.log.warn({ path: what }, 'the policy does not allow reading this KV path; values there look "not in Vault"');
      return true;
    }
    return false;
  };

  const readSecret = async (mount: string, path: string): Promise<void> => {
    const logical = `${mount}/${path}`;
    if (seen.has(logical) || excluded(mount, path)) return;
    seen.add(logical);
    try {
      const res = await limit(() => vault.read(`${mount}/data/${path}`, kvRead, opts.signal ? { signal: opts.signal } : {}));
      if (res.data) index.addSecret(logical, res.data);
    } catch (err) {
      if (err instanceof VaultError && err.status === 404) return;
      if (!denied(err, logical)) throw err;
    }
  };

  const walk = async (mount: string, folder: string): Promise<void> => {
    if (folder !== '' && excluded(mount, folder)) return;
    let keys: string[];
    try {
      keys = await limit(() => vault.list(`${mount}/metadata/${folder}`, opts.signal ? { signal: opts.signal } : {}));
    } catch (err) {
      if (denied(err, `${mount}/${folder}`)) return;
      throw err;
    }
    await Promise.all(keys.map((k) => (k.endsWith('/') ? walk(mount, folder + k) : readSecret(mount, folder + k))));
  };

  for (const source of opts.sources) {
    if (source.prefix === '' || source.prefix.endsWith('/')) await walk(source.mount, source.prefix);
    else {
      // `secret:apps` may name one secret, a folder, or both.
      await Promise.all([readSecret(source.mount, source.prefix), walk(source.mount, `${source.prefix}/`)]);
    }
  }
  await Promise.all((opts.paths ?? []).map((p) => readSecret(p.mount, p.prefix)));
  return index;
}
