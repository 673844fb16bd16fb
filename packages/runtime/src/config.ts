import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, type ConfigIssue } from './errors.ts';

/** One environment variable feeding one config field. */
export interface EnvBinding {
  /** Dotted path of the field it sets, e.g. `vault.address`. */
  path: string;
  doc: string;
  /** Secret-bearing: never echoed, only its presence is shown in --help. */
  secret?: boolean;
}
export type EnvMap = Record<string, EnvBinding>;

/** A job's config: the fields (a zod object shape) and the env vars that set them. */
export interface ConfigSpec<Shape extends z.ZodRawShape> {
  shape: Shape;
  env: EnvMap;
}

export function defineConfig<Shape extends z.ZodRawShape>(spec: ConfigSpec<Shape>): ConfigSpec<Shape> {
  return spec;
}

export type ConfigOf<Spec> = Spec extends ConfigSpec<infer Shape> ? z.infer<z.ZodObject<Shape>> : never;

// Field helpers. Values from the environment arrive as strings, values from a file as YAML types;
// these accept both and say exactly what they wanted, never echoing what they got.
const fromString = <T>(parse: (s: string) => T | undefined) => (v: unknown) =>
  typeof v === 'string' ? (parse(v.trim()) ?? v) : v;

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

export const field = {
  url: (what = 'an absolute http(s) URL such as https://vault.example.com:8200') =>
    z.string({ error: `must be ${what}` }).refine((s) => {
      if (!URL.canParse(s)) return false;
      const u = new URL(s);
      return u.protocol === 'http:' || u.protocol === 'https:';
    }, `must be ${what}`),
  int: (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) =>
    z.preprocess(
      fromString((s) => (/^-?\d+$/.test(s) ? Number(s) : undefined)),
      z
        .number({ error: 'must be a whole number' })
        .int('must be a whole number')
        .min(min, `must be at least ${min}`)
        .max(max, `must be at most ${max}`),
    ),
  bool: () =>
    z.preprocess(
      fromString((s) => ({ true: true, false: false, '1': true, '0': false, yes: true, no: false })[s.toLowerCase()]),
      z.boolean({ error: 'must be true or false' }),
    ),
  /** Seconds; accepts a number of seconds or `500ms`, `30s`, `5m`, `1h`, `7d`. */
  seconds: (min = 0) =>
    z.preprocess(
      (v) => {
        if (typeof v !== 'string') return v;
        const s = v.trim();
        if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
        const m = DURATION.exec(s);
        return m ? Number(m[1]) * UNIT_SECONDS[m[2]!]! : v;
      },
      z
        .number({ error: 'must be a duration such as 30s, 5m, 1h or 7d' })
        .min(min, `must be at least ${min} seconds`),
    ),
  /** A list; from the environment, comma-separated. */
  list: <T extends z.ZodType>(item: T) =>
    z.preprocess(
      fromString((s) => (s === '' ? [] : s.split(',').map((x) => x.trim()))),
      z.array(item, { error: 'must be a list (comma-separated in an environment variable)' }),
    ),
  nonEmpty: (what = 'a non-empty string') => z.string({ error: `must be ${what}` }).min(1, `must be ${what}`),
};

/** Fields every job has, whatever it does. */
export const commonConfig = defineConfig({
  shape: {
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
    metrics: z
      .strictObject({
        // The push goes to <url>/metrics/job/<job>: a query string or fragment would be dropped
        // without a word (a tenant or token parameter the operator relies on), so it is refused.
        pushgatewayUrl: field
          .url('the Pushgateway URL, e.g. http://pushgateway.monitoring:9091')
          .refine((s) => !URL.canParse(s) || (new URL(s).search === '' && new URL(s).hash === '' && !s.includes('?') && !s.includes('#')), {
            message: 'must have no query string or fragment: the push would drop them (put the Pushgateway path prefix in the path)',
            abort: true,
          })
          .optional(),
        pushTimeoutSeconds: field.seconds(1).default(5),
      })
      .default({ pushTimeoutSeconds: 5 }),
    /** How long cleanup (abort uploads, revoke the login token) may take after SIGTERM. */
    shutdownGraceSeconds: field.seconds(1).default(25),
  },
  env: {
    LOG_LEVEL: { path: 'logLevel', doc: 'trace|debug|info|warn|error (default info)' },
    PUSHGATEWAY_URL: { path: 'metrics.pushgatewayUrl', doc: 'Prometheus Pushgateway to push run metrics to (optional)' },
    PUSHGATEWAY_TIMEOUT: { path: 'metrics.pushTimeoutSeconds', doc: 'timeout of the metrics push (default 5s)' },
    VAULTKEEPER_SHUTDOWN_GRACE: {
      path: 'shutdownGraceSeconds',
      doc: 'time allowed for cleanup after SIGTERM (default 25s; keep it under the pod grace period)',
    },
  },
});

export interface LoadConfigInput {
  env: NodeJS.ProcessEnv;
  /** Path of a YAML or JSON file; its values are overridden by the environment. */
  file?: string | undefined;
}

/** The one config loader: file, then environment on top, validated against the schema. */
export function loadConfig<Shape extends z.ZodRawShape>(
  spec: ConfigSpec<Shape>,
  input: LoadConfigInput,
): z.infer<z.ZodObject<Shape>> {
  const issues: ConfigIssue[] = [];
  const sources = new Map<string, string>();
  let raw: Record<string, unknown> = {};

  if (input.file) {
    try {
      const parsed: unknown = parseYaml(readFileSync(input.file, 'utf8'));
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== 'object' || Array.isArray(parsed)) {
          issues.push({ field: '(file)', source: input.file, reason: 'must be a mapping of config keys' });
        } else raw = parsed as Record<string, unknown>;
      }
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'not valid YAML or JSON';
      issues.push({ field: '(file)', source: input.file, reason });
    }
  }

  for (const [name, binding] of Object.entries(spec.env)) {
    const value = input.env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, binding.path, value);
    sources.set(binding.path, name);
  }
  // A typo in a VAULTKEEPER_* variable would otherwise be silently ignored.
  for (const name of Object.keys(input.env)) {
    if (name.startsWith('VAULTKEEPER_') && !(name in spec.env) && !PROCESS_LEVEL_VARS.has(name)) {
      issues.push({ field: name, source: 'environment', reason: 'unknown variable' });
    }
  }
  if (issues.length) throw new ConfigError(issues);

  const result = z.strictObject(spec.shape).safeParse(raw);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const base = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) issues.push({ field: base ? `${base}.${key}` : key, reason: 'unknown key' });
      continue;
    }
    const field = base || '(root)';
    const source = sourceOf(sources, issue.path.map(String)) ?? input.file;
    const reason = issue.code === 'invalid_type' && getPath(raw, issue.path) === undefined ? 'is required' : issue.message;
    issues.push(source ? { field, source, reason } : { field, reason });
  }
  throw new ConfigError(issues);
}

/**
 * VAULTKEEPER_* variables that are not job config: the config file's path (read by the runtime
 * before config exists) and the dev tooling's own (dev/, test/stack), which a developer's shell
 * may export while running jobs locally.
 */
const PROCESS_LEVEL_VARS = new Set(['VAULTKEEPER_CONFIG', 'VAULTKEEPER_CACHE', 'VAULTKEEPER_STACK_DIR', 'VAULTKEEPER_KEEP_STACK']);

/** The variable that set this field or the nearest enclosing one (a list item names its list's variable). */
function sourceOf(sources: Map<string, string>, path: string[]): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const hit = sources.get(path.slice(0, n).join('.'));
    if (hit) return hit;
  }
  return undefined;
}

function getPath(source: unknown, path: readonly PropertyKey[]): unknown {
  let node = source;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

export function mergeSpecs<A extends z.ZodRawShape, B extends z.ZodRawShape>(
  a: ConfigSpec<A>,
  b: ConfigSpec<B>,
): ConfigSpec<A & B> {
  return { shape: { ...a.shape, ...b.shape } as A & B, env: { ...a.env, ...b.env } };
}
