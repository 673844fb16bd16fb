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

export type MigrationStatus = 'migrated' | 'partly-migrated' | 'not-in-vault' | 'empty';

export interface MigrationResult {
  status: MigrationStatus;
  /** The one Vault path that holds every value, when there is one. */
  path?: string;
  /** Per key, where its value was found (names only, never values). */
  found: Array<{ key: string; path: string; field: string }>;
  missingKeys: string[];
  /** Keys whose value is empty: nothing to migrate, so they count neither way. */
  emptyKeys: string[];
}

/**
 * Fingerprints of every value under the configured KV v2 paths, with where each sits. Holds no
 * value: only keyed fingerprints (see fingerprint.ts) and path/field names.
 */
export class VaultIndex {
  private readonly byFingerprint = new Map<string, VaultLocation[]>();
  secretsRead = 0;
  valuesIndexed = 0;
  /** Paths the policy did not let us list or read: a value there looks "not in Vault". */
  readonly unreadable: string[] = [];

  constructor(readonly fp: Fingerprinter) {}

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
   * Compares a Secret's values, key by key, with the index. "Migrated" means every non-empty
   * value is somewhere in Vault; the report then names the one path that holds all of them if
   * there is one (the usual case: one KV secret per Kubernetes Secret, keys possibly renamed).
   */
  compare(values: Array<{ key: string; bytes: Buffer }>): MigrationResult {
    const emptyKeys: string[] = [];
    const perKey: Array<{ key: string; locations: VaultLocation[] }> = [];
    for (const { key, bytes } of values) {
      if (bytes.length === 0) emptyKeys.push(key);
      else perKey.push({ key, locations: this.locate(bytes) });
    }
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
    const status: MigrationStatus =
      perKey.length === 0 ? 'empty' : missingKeys.length === 0 ? 'migrated' : found.length === 0 ? 'not-in-vault' : 'partly-migrated';
    const all = best !== undefined && rank(best).keys === perKey.length && perKey.length > 0;
    return { status, ...(all ? { path: best } : {}), found, missingKeys, emptyKeys };
  }
}

const kvRead = z.object({ data: z.record(z.string(), z.unknown()).nullable() }).loose();

export interface BuildIndexOptions {
  sources: KvSource[];
  /** Subtrees never indexed (the job's own backups, which hold copies of the Secrets themselves). */
  exclude: KvSource[];
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
  const index = new VaultIndex(opts.fp);
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
  return index;
}
