// Maps what the shared Vault client throws to the probe's failure classes.
import { VaultError, VaultResponseShapeError, VaultUnreachableError } from '@vaultkeeper/vault';
import { failed, type CheckOutcome } from './check.ts';

export function vaultFailureOutcome(err: unknown, context: string): CheckOutcome {
  if (err instanceof VaultUnreachableError) return failed('unreachable', `${context}: ${err.node} ${err.code}`);
  if (err instanceof VaultError) {
    if (err.status === 403) {
      // A refused login is the Kubernetes auth role (bound service account, namespace, audience);
      // a refused read is the job's policy.
      const why = err.path.startsWith('auth/') ? 'the auth role refused the service account' : "the job's Vault policy";
      return failed('denied', `${context}: permission denied (${why})`, { details: { path: err.path } });
    }
    if (err.status === 503) return failed('sealed', `${context}: Vault answered 503 (sealed or no active node)`, { details: { path: err.path } });
    return failed('other', `${context}: Vault answered ${err.status}`, { details: { path: err.path, errors: err.errors } });
  }
  if (err instanceof VaultResponseShapeError) return failed('other', `${context}: unexpected answer (${err.issues.join('; ')})`);
  if (isTimeout(err)) return failed('unreachable', `${context}: no answer in time`);
  return failed('other', `${context}: ${err instanceof Error ? err.message : String(err)}`);
}

/**
 * A call that ran out of time: the signal's own TimeoutError/AbortError, or the runtime retry
 * helper's AbortedError, which carries the signal's reason in its message ("TimeoutError: ...").
 */
function isTimeout(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { name, message } = err as { name?: unknown; message?: unknown };
  if (name === 'AbortError' || name === 'TimeoutError') return true;
  return name === 'AbortedError' && typeof message === 'string' && message.startsWith('TimeoutError');
}
