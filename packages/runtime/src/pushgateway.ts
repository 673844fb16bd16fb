// The push itself, over Node's fetch. prom-client's Pushgateway client calls url.parse() (Node's
// DEP0169 warning on every bundled run, a non-JSON line on stderr) and keeps credentials written
// into the URL in the URL it reports; this one sends them as a Basic Authorization header and
// shows the address without them.
import { registerSecret } from './secrets.ts';

export interface PushgatewayDestination {
  /** The push URL for the group, without credentials. */
  endpoint: URL;
  authorization?: string;
  /** What the log lines show: scheme, host and path, never the credentials. */
  shown: string;
}

/**
 * Where a push goes (POST <url>/metrics/job/<job>, the Pushgateway's "push add" semantics). The
 * URL's password is registered as a secret (raw and percent-decoded): no line ever prints it.
 */
export function pushgatewayDestination(url: string, jobName: string): PushgatewayDestination {
  const target = new URL(url);
  let authorization: string | undefined;
  if (target.username || target.password) {
    const user = decodeURIComponent(target.username);
    const password = decodeURIComponent(target.password);
    registerSecret(password);
    registerSecret(target.password);
    authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    target.username = '';
    target.password = '';
  }
  target.search = '';
  target.hash = '';
  const base = target.pathname.replace(/\/+$/, '');
  const shown = `${target.origin}${base}`;
  const endpoint = new URL(`${base}/metrics/job/${encodeURIComponent(jobName)}`, target.origin);
  return authorization ? { endpoint, authorization, shown } : { endpoint, shown };
}

export class PushgatewayError extends Error {
  override readonly name = 'PushgatewayError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export async function pushAdd(dest: PushgatewayDestination, body: string, contentType: string, timeoutMs: number): Promise<void> {
  let res: Response;
  try {
    res = await fetch(dest.endpoint, {
      method: 'POST',
      headers: { 'content-type': contentType, ...(dest.authorization ? { authorization: dest.authorization } : {}) },
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    // fetch says only "fetch failed"; the reason (ECONNREFUSED, a timeout) is in its cause.
    const cause = (err as Error).cause as { code?: unknown; message?: unknown } | undefined;
    const why = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000}s` : typeof cause?.code === 'string' ? cause.code : (err as Error).message;
    throw new PushgatewayError(`push to ${dest.shown} failed: ${why}`);
  }
  // The answer's body is the Pushgateway's own error text (e.g. a metric it refuses); kept short.
  const text = res.ok ? '' : (await res.text().catch(() => '')).slice(0, 300).trim();
  if (!res.ok) throw new PushgatewayError(`push to ${dest.shown} answered ${res.status}${text ? `: ${text}` : ''}`, res.status);
}
