/**
 * The Vault side: GET /v1/sys/storage/raft/snapshot on the active node, as a stream.
 *
 * A standby does not forward this request. Vault's standby answers 307 with the active node's
 * address (the Go API client mishandles that redirect for a streamed body: hashicorp/vault#15258);
 * OpenBao 2.6's standby, tested against the local stack, answers 200 with a snapshot of its own,
 * possibly lagging, copy. Either way the job asks sys/leader first and goes straight to the active
 * node, and the shared client still follows a 307 itself (the token is valid cluster-wide, so no
 * new login is needed on the other node).
 */
import type { ClientRequest } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream';
import type { Logger } from '@vaultkeeper/runtime';
import { VaultError, VaultUnreachableError, type VaultClient } from '@vaultkeeper/vault';

/** The snapshot body broke off (connection reset, idle timeout, node died) after the 200. */
export class SnapshotStreamError extends Error {
  override readonly name = 'SnapshotStreamError';
  readonly code: string | undefined;
  constructor(
    readonly node: string,
    cause: Error,
  ) {
    const code = (cause as NodeJS.ErrnoException).code;
    super(`the snapshot stream from ${node} broke off: ${code ?? cause.message}`, { cause });
    this.code = code;
  }
}

export interface SnapshotSource {
  body: Readable;
  /** The node that is serving it (after any redirect). */
  node: string;
}

export async function openSnapshotStream(vault: VaultClient, log: Logger, signal: AbortSignal): Promise<SnapshotSource> {
  try {
    await vault.findActiveNode({ signal });
  } catch (err) {
    // Not fatal: the redirect from a standby gets us there too.
    log.warn({ err }, 'could not ask sys/leader for the active node; relying on the redirect');
  }
  const res = await vault.stream('sys/storage/raft/snapshot', { signal });
  return { body: res.body, node: res.node };
}

/**
 * Pipes the snapshot body into `into`, turning a body that breaks off into a SnapshotStreamError
 * on `into` (so that whoever reads `into` sees why), and releasing the connection if `into` fails.
 */
export function connectSnapshot(source: SnapshotSource, into: Writable & { destroy(err?: Error): unknown }): void {
  const { body, node } = source;
  let done = false;
  // When the client gives up on a silent socket (vault.requestTimeoutSeconds) it destroys the
  // request with ETIMEDOUT, but the response only reports "aborted"; keep the real reason.
  let requestError: Error | undefined;
  (body as unknown as { req?: ClientRequest }).req?.once('error', (err: Error) => (requestError = err));
  finished(body, (err) => {
    if (done) return;
    done = true;
    if (err && !into.destroyed) into.destroy(new SnapshotStreamError(node, requestError ?? err));
  });
  into.on('error', () => {
    if (!body.destroyed) body.destroy();
  });
  into.on('close', () => {
    if (!body.destroyed && !body.readableEnded) body.destroy();
  });
  body.pipe(into);
}

/** Whether a failure of one attempt is worth another attempt from the start. */
export function isVaultSideTransient(err: unknown): boolean {
  if (err instanceof SnapshotStreamError || err instanceof VaultUnreachableError) return true;
  if (err instanceof VaultError) return err.status === 429 || err.status >= 500;
  return false;
}
