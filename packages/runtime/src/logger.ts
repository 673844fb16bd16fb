import { pino, type Logger } from 'pino';
import { scrubSecrets } from './secrets.ts';

export type { Logger } from 'pino';

/**
 * Field names that carry secrets anywhere in a log record. A fixed list, configured once here:
 * redaction rules are never built from input.
 */
export const REDACTED_PATHS = [
  'token',
  'client_token',
  'clientToken',
  'secret',
  'client_secret',
  'clientSecret',
  'password',
  'jwt',
  'secret_id',
  'secretId',
  'authorization',
  'apiToken',
  'accessToken',
  'value',
  'values',
  'data',
  'headers',
  '*.token',
  '*.client_token',
  '*.clientToken',
  '*.secret',
  '*.client_secret',
  '*.clientSecret',
  '*.password',
  '*.jwt',
  '*.secret_id',
  '*.secretId',
  '*.authorization',
  '*.apiToken',
  '*.accessToken',
  '*.headers',
  '*.data',
];

export interface LoggerOptions {
  job: string;
  level: string;
  /** Where lines go; stdout by default. Tests pass a stream to capture them. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      name: `vaultkeeper-${opts.job}`,
      level: opts.level,
      base: { job: opts.job },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: describeError, error: describeError },
      hooks: { streamWrite: scrubSecrets },
    },
    (opts.destination ?? pino.destination({ dest: 1, sync: true })) as pino.DestinationStream,
  );
}

/** The fields of an error that are safe to log, besides its class and message. */
const SAFE_ERROR_FIELDS = ['status', 'method', 'path', 'errors', 'code', 'issues', 'details', 'check'] as const;

/** How many errors deep a cause chain (or errors/details nesting) is followed: a cyclic or runaway chain must not overflow the stack inside the logger. */
export const MAX_ERROR_DEPTH = 5;

/**
 * Field names never copied out of an error's nested fields, at any depth: pino's redaction reaches
 * two levels only, and an error's details can nest deeper. `body`/`response` are an HTTP library's.
 */
const NESTED_SECRET_KEYS = new Set(
  [...REDACTED_PATHS.filter((p) => !p.startsWith('*.')), 'body', 'response'].map((k) => k.toLowerCase()),
);

interface Walk {
  depth: number;
  seen: WeakSet<object>;
}

/**
 * What of an error is safe to log: its class, message and the typed fields our clients set.
 * Never the whole object: an HTTP library's error holds the request, headers and body. Such an
 * error (one carrying a response `body` or `headers`) gets only the first line of its message:
 * @kubernetes/client-node's ApiException writes the whole response body, which can be a Secret,
 * into the lines after it. A value that is already a description (a JobFailure's `details.err`)
 * keeps its safe fields; any other thrown value is named by its type only. The safe fields are
 * copied as plain data: an Error inside them (an AggregateError's `errors`, an Error in `details`)
 * is described the same way, secret-named keys are dropped at any depth, and nesting stops after
 * MAX_ERROR_DEPTH levels (a cyclic cause is named, not followed).
 */
export function describeError(err: unknown): Record<string, unknown> {
  return describe(err, { depth: 0, seen: new WeakSet() });
}

function describe(err: unknown, walk: Walk): Record<string, unknown> {
  if (typeof err === 'object' && err !== null) {
    if (walk.seen.has(err)) return { message: '[cause cycle: this error is already described above]' };
    if (walk.depth >= MAX_ERROR_DEPTH) return { message: `[cause chain cut after ${MAX_ERROR_DEPTH} levels]` };
    walk = { depth: walk.depth + 1, seen: walk.seen };
    walk.seen.add(err);
  }
  if (err instanceof Error) return describeErrorObject(err, walk);
  if (typeof err === 'string') return { message: scrubSecrets(err) };
  if (isDescription(err)) return describeDescription(err, walk);
  return { message: `a non-Error value was thrown (${err === null ? 'null' : typeof err})` };
}

function describeErrorObject(err: Error, walk: Walk): Record<string, unknown> {
  const fields = err as unknown as Record<string, unknown>;
  const carriesResponse = 'body' in fields || 'headers' in fields || 'response' in fields;
  const message = carriesResponse ? (err.message.split('\n', 1)[0] ?? '') : err.message;
  // A class that does not set `name` (ApiException) is still told apart by its constructor.
  const type = err.name === 'Error' && err.constructor?.name && err.constructor.name !== 'Error' ? err.constructor.name : err.name;
  const out: Record<string, unknown> = { type, message: scrubSecrets(message) };
  for (const key of SAFE_ERROR_FIELDS) {
    const v = fields[key];
    if (v === undefined) continue;
    // A JobFailure's details.err/details.cause is its cause: logged once, as `cause`, below.
    if (key !== 'details' || !isRecord(v)) out[key] = safeValue(v, walk, 0);
    else if (Object.keys(withoutKeys(v, CAUSE_KEYS)).length) out[key] = safeValue(withoutKeys(v, CAUSE_KEYS), walk, 0);
  }
  const cause = err.cause ?? (isRecord(fields.details) ? (fields.details.err ?? fields.details.cause) : undefined);
  if (cause !== undefined) out.cause = describe(cause, walk);
  return out;
}

/**
 * A copy of a safe field as plain data: Errors described, secret-named keys left out, class
 * instances (a Buffer, a socket) named by type, nothing deeper than MAX_ERROR_DEPTH levels.
 */
function safeValue(v: unknown, walk: Walk, level: number): unknown {
  if (typeof v === 'string') return scrubSecrets(v);
  if (typeof v !== 'object' || v === null) return typeof v === 'function' || typeof v === 'symbol' ? `[${typeof v}]` : v;
  if (v instanceof Error) return describe(v, walk);
  // A time in the details (a lease's expiry) stays readable, as pino would have printed it.
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? '[invalid Date]' : v.toISOString();
  if (level >= MAX_ERROR_DEPTH) return '[nested too deep]';
  if (walk.seen.has(v)) return '[cycle]';
  walk.seen.add(v);
  try {
    if (Array.isArray(v)) return v.map((item) => safeValue(item, walk, level + 1));
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) return `[${(v as object).constructor?.name ?? 'object'}]`;
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v)) if (!NESTED_SECRET_KEYS.has(k.toLowerCase())) out[k] = safeValue(item, walk, level + 1);
    return out;
  } finally {
    // Seen only along this path: the same plain value twice side by side is not a cycle.
    walk.seen.delete(v);
  }
}

/** Where a JobFailure's details carry the error that caused it. */
export const CAUSE_KEYS = ['err', 'cause'];

/** An error already turned into log fields by describeError (it has a string message). */
function isDescription(v: unknown): v is Record<string, unknown> {
  return isRecord(v) && typeof v.message === 'string';
}

function describeDescription(d: Record<string, unknown>, walk: Walk): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(typeof d.type === 'string' ? { type: d.type } : {}), message: scrubSecrets(d.message as string) };
  for (const key of SAFE_ERROR_FIELDS) if (d[key] !== undefined) out[key] = safeValue(d[key], walk, 0);
  if (d.cause !== undefined) out.cause = describe(d.cause, walk);
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function withoutKeys(v: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(v).filter(([k]) => !keys.includes(k)));
}
