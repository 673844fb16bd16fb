// Maps what the AWS SDK throws to the failure classes an operator acts on. The error names are the
// service's own exception types (KMS API reference, "Errors" of DescribeKey / Encrypt / Decrypt;
// S3's error codes), network failures are Node's errno codes, timeouts are smithy's TimeoutError
// (requestTimeout / connectionTimeout) or the AbortError of our own per-call signal.
import { failed, type CheckOutcome, type FailureClass } from './check.ts';

export interface AwsFailure {
  class: FailureClass;
  /** Short, fixed wording for the table and the alert ("disabled", "pending deletion", ...). */
  reason: string;
  /** The service's error name or the errno code, for the logs. */
  code: string;
  /** HTTP status when the service answered. */
  httpStatus?: number;
  /** The service's own message (no secret: AWS messages name ARNs, never credentials). */
  message?: string;
}

const UNREACHABLE_CODES: Record<string, string> = {
  ENOTFOUND: 'DNS name not found',
  EAI_AGAIN: 'DNS lookup failed',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  EPIPE: 'connection closed',
  EPROTO: 'TLS handshake failed',
  UND_ERR_SOCKET: 'connection closed',
};

const DENIED: Record<string, string> = {
  AccessDeniedException: 'access denied by an IAM policy, the key policy or a grant',
  AccessDenied: 'access denied by an IAM or bucket policy',
  Forbidden: 'access denied',
  UnrecognizedClientException: 'credentials not recognised: unknown access key',
  InvalidAccessKeyId: 'credentials not recognised: unknown access key',
  InvalidClientTokenId: 'credentials not recognised: unknown access key',
  InvalidSignatureException: 'request signature rejected: wrong secret key or clock skew',
  SignatureDoesNotMatch: 'request signature rejected: wrong secret key or clock skew',
  ExpiredTokenException: 'session credentials expired',
  ExpiredToken: 'session credentials expired',
  InvalidGrantTokenException: 'grant token invalid',
  CredentialsProviderError: 'no AWS credentials found: no web identity, pod identity or keys',
};

const THROTTLED = new Set(['ThrottlingException', 'Throttling', 'LimitExceededException', 'TooManyRequestsException', 'RequestLimitExceeded', 'SlowDown']);

/** KMS answers these while a key exists but cannot be used for cryptography. */
function keyUnusable(name: string, message: string): string | undefined {
  switch (name) {
    case 'DisabledException':
      return 'disabled';
    case 'NotFoundException':
      return 'not found: wrong key id, alias or region, or the key was deleted';
    case 'KeyUnavailableException':
      return 'unavailable: its custom key store is disconnected';
    case 'InvalidKeyUsageException':
      return 'not a symmetric ENCRYPT_DECRYPT key';
    case 'KMSInvalidStateException': {
      // KMS names the state in the message: "... is pending deletion", "... is pending import".
      if (/pending ?deletion/i.test(message)) return 'pending deletion';
      if (/pending ?import/i.test(message)) return 'pending import: no key material';
      if (/disabled/i.test(message)) return 'disabled';
      if (/unavailable/i.test(message)) return 'unavailable';
      return 'in a state that does not allow this operation';
    }
    default:
      return undefined;
  }
}

export function classifyAwsError(err: unknown): AwsFailure {
  if (!(err instanceof Error)) return { class: 'other', reason: 'unexpected error', code: 'unknown' };
  const e = err as Error & { code?: string; $metadata?: { httpStatusCode?: number }; $fault?: string; errors?: unknown[] };
  const name = e.name;
  const httpStatus = e.$metadata?.httpStatusCode;
  const base = { code: name, ...(httpStatus ? { httpStatus } : {}), message: e.message };

  if (name === 'AbortError' || name === 'TimeoutError' || name === 'RequestTimeout' || name === 'RequestTimeoutException') {
    return { ...base, class: 'unreachable', reason: 'no answer in time' };
  }
  const errno = errnoOf(e);
  if (errno && UNREACHABLE_CODES[errno]) return { ...base, code: errno, class: 'unreachable', reason: UNREACHABLE_CODES[errno] };

  const unusable = keyUnusable(name, e.message);
  if (unusable) return { ...base, class: 'key-unusable', reason: unusable };
  if (DENIED[name]) return { ...base, class: 'denied', reason: DENIED[name] };
  if (THROTTLED.has(name) || httpStatus === 429) return { ...base, class: 'throttled', reason: 'request rate exceeded' };
  if (name === 'NoSuchBucket') return { ...base, class: 'other', reason: 'bucket not found' };
  if (name === 'DependencyTimeoutException') return { ...base, class: 'unreachable', reason: 'KMS timed out internally' };
  if (httpStatus === 403) return { ...base, class: 'denied', reason: 'access denied' };
  if (errno) return { ...base, code: errno, class: 'unreachable', reason: `network error ${errno}` };
  if (e.$fault === 'server' || (httpStatus !== undefined && httpStatus >= 500)) {
    return { ...base, class: 'other', reason: `service error ${name}` };
  }
  if (/region is missing/i.test(e.message)) return { ...base, class: 'other', reason: 'no AWS region configured' };
  return { ...base, class: 'other', reason: name && name !== 'Error' ? name : 'unexpected error' };
}

/** Node's errno code, also when wrapped (AggregateError from happy-eyeballs connects, `cause`). */
function errnoOf(e: { code?: unknown; errors?: unknown[]; cause?: unknown }): string | undefined {
  if (typeof e.code === 'string' && /^E[A-Z_]+$|^UND_ERR_/.test(e.code)) return e.code;
  for (const inner of [...(Array.isArray(e.errors) ? e.errors : []), e.cause]) {
    if (inner && typeof inner === 'object') {
      const code = errnoOf(inner as { code?: unknown });
      if (code) return code;
    }
  }
  return undefined;
}

/** A failed check outcome for an AWS error: the class and the fixed wording, the service's words in details. */
export function awsFailureOutcome(err: unknown, context = ''): CheckOutcome {
  const f = classifyAwsError(err);
  return failed(f.class, context ? `${f.reason} (${context})` : f.reason, {
    details: { awsError: f.code, ...(f.httpStatus ? { httpStatus: f.httpStatus } : {}), ...(f.message ? { awsMessage: f.message } : {}) },
  });
}
