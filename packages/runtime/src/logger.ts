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

/**
 * What of an error is safe to log: its class, message and the typed fields our clients set.
 * Never the whole object: an HTTP library's error holds the request, headers and body. Such an
 * error (one carrying a response `body` or `headers`) gets only the first line of its message:
 * @kubernetes/client-node's ApiException writes the whole response body, which can be a Secret,
 * into the lines after it. A value that is already a description (a JobFailure's `details.err`)
 * keeps its safe fields; any other thrown value is named by its type only.
 */
export function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof Error) return describeErrorObject(err);
  if (typeof err === 'string') return { message: scrubSecrets(err) };
  if (isDescription(err)) return describeDescription(err);
  return { message: `a non-Error value was thrown (${err === null ? 'null' : typeof err})` };
}

function describeErrorObject(err: Error): Record<string, unknown> {
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
    if (key !== 'details' || !isRecord(v)) out[key] = v;
    else if (Object.keys(withoutKeys(v, CAUSE_KEYS)).length) out[key] = withoutKeys(v, CAUSE_KEYS);
  }
  const cause = err.cause ?? (isRecord(fields.details) ? (fields.details.err ?? fields.details.cause) : undefined);
  if (cause !== undefined) out.cause = describeError(cause);
  return out;
}

/** Where a JobFailure's details carry the error that caused it. */
export const CAUSE_KEYS = ['err', 'cause'];

/** An error already turned into log fields by describeError (it has a string message). */
function isDescription(v: unknown): v is Record<string, unknown> {
  return isRecord(v) && typeof v.message === 'string';
}

function describeDescription(d: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(typeof d.type === 'string' ? { type: d.type } : {}), message: scrubSecrets(d.message as string) };
  for (const key of SAFE_ERROR_FIELDS) if (d[key] !== undefined) out[key] = d[key];
  if (d.cause !== undefined) out.cause = describeError(d.cause);
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function withoutKeys(v: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(v).filter(([k]) => !keys.includes(k)));
}
