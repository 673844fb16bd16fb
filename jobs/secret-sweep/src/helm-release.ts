import { gunzipSync } from 'node:zlib';
import { parseAllDocuments } from 'yaml';

export interface HelmReleaseInfo {
  release: string;
  namespace: string;
  revision: number;
  status: string;
  chart?: string;
}

/** A string found in a release record, and where; `text` is for comparison in memory only. */
export interface HelmValue {
  where: string;
  text?: string;
  bytes?: Buffer;
}

export interface DecodedRelease {
  info: HelmReleaseInfo;
  values: HelmValue[];
  /** Manifests that did not parse as YAML (their strings were not compared). */
  unparsed: string[];
}

export class HelmDecodeError extends Error {
  override readonly name = 'HelmDecodeError';
}

const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * Decodes a Helm 3 release record: the Secret's `release` key holds base64 (Helm's own, on top
 * of the Secret's) of a gzipped JSON release (helm pkg/storage/driver/util.go encodeRelease;
 * older records may be uncompressed). Returns the release identity and every string it keeps
 * that could be a secret: the user-supplied values, the chart's default values, and every string
 * of the rendered manifests and hooks, with Secret `data` decoded.
 */
export function decodeHelmRelease(releaseField: string, opts: { minLength: number; maxBytes: number }): DecodedRelease {
  let json: Buffer = Buffer.from(Buffer.from(releaseField, 'base64').toString('latin1'), 'base64');
  if (json[0] === GZIP_MAGIC[0] && json[1] === GZIP_MAGIC[1]) {
    try {
      json = gunzipSync(json, { maxOutputLength: opts.maxBytes });
    } catch (err) {
      throw new HelmDecodeError(`cannot inflate the release record: ${(err as NodeJS.ErrnoException).code ?? 'invalid gzip'}`);
    }
  }
  let rel: Record<string, unknown>;
  try {
    rel = JSON.parse(json.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new HelmDecodeError('the release record is not JSON');
  }
  const info = asObject(rel.info);
  const chartMeta = asObject(asObject(rel.chart).metadata);
  const release: HelmReleaseInfo = {
    release: str(rel.name),
    namespace: str(rel.namespace),
    revision: typeof rel.version === 'number' ? rel.version : 0,
    status: str(info.status),
    ...(chartMeta.name ? { chart: `${str(chartMeta.name)}-${str(chartMeta.version)}` } : {}),
  };

  const values: HelmValue[] = [];
  const unparsed: string[] = [];
  const keep = (where: string, text: string) => {
    if (text.length >= opts.minLength) values.push({ where, text });
  };
  leaves(rel.config, 'values', keep);
  leaves(asObject(rel.chart).values, 'chart default values', keep);

  const manifests: Array<[string, unknown]> = [['manifest', rel.manifest]];
  for (const hook of Array.isArray(rel.hooks) ? rel.hooks : []) manifests.push([`hook ${str(asObject(hook).name)}`, asObject(hook).manifest]);
  for (const [label, manifest] of manifests) {
    if (typeof manifest !== 'string' || manifest === '') continue;
    let docs: unknown[];
    try {
      docs = parseAllDocuments(manifest).map((d) => {
        if (d.errors.length) throw new Error('yaml');
        return d.toJS() as unknown;
      });
    } catch {
      unparsed.push(label);
      continue;
    }
    for (const doc of docs) {
      const o = asObject(doc);
      const id = `${label} ${str(o.kind) || '?'} ${str(asObject(o.metadata).name) || '?'}`;
      if (o.kind === 'Secret') {
        for (const [k, v] of Object.entries(asObject(o.data))) {
          if (typeof v !== 'string') continue;
          const bytes = Buffer.from(v, 'base64');
          if (bytes.length >= opts.minLength) values.push({ where: `${id} data.${k}`, bytes });
        }
        for (const [k, v] of Object.entries(asObject(o.stringData))) if (typeof v === 'string') keep(`${id} stringData.${k}`, v);
      }
      for (const [k, v] of Object.entries(o)) if (!(o.kind === 'Secret' && (k === 'data' || k === 'stringData'))) leaves(v, `${id} ${k}`, keep);
    }
  }
  return { info: release, values, unparsed };
}

function leaves(value: unknown, path: string, visit: (where: string, text: string) => void): void {
  if (typeof value === 'string') visit(path, value);
  else if (Array.isArray(value)) value.forEach((v, i) => leaves(v, `${path}[${i}]`, visit));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) leaves(v, `${path}.${k}`, visit);
}

function asObject(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}
