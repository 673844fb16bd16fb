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

/**
 * What of an error is safe to log: its class, message and the typed fields our clients set.
 * Never the whole object: an HTTP library's error holds the request, headers and body.
 */
export function describeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const out: Record<string, unknown> = { type: err.name, message: scrubSecrets(err.message) };
  for (const key of ['status', 'method', 'path', 'errors', 'code', 'issues', 'details', 'check'] as const) {
    const v = (err as unknown as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = v;
  }
  if (err.cause instanceof Error) out.cause = describeError(err.cause);
  return out;
}
