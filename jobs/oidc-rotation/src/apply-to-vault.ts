// Giving Vault's OIDC config a client secret, and closing the change in the record once it took.
import { JobFailure, describeError, type JobResult } from '@vaultkeeper/runtime';
import { VaultError } from '@vaultkeeper/vault';
import { fingerprint } from './fingerprint.ts';
import { carryOverProblems, configWriteBody, readOidcConfig, type OidcConfig } from './oidc-config.ts';
import { fp, type RunContext } from './run-context.ts';
import { held, markCurrent, type RotationRecord } from './rotation-record.ts';
import { verifyAfterWrite } from './verify.ts';

/**
 * A config write that failed. `refused`: Vault answered with a 4xx, and the plugin's write is
 * one storage transaction, so nothing changed. Otherwise (no answer, a 5xx after retries, the
 * run stopped) the write may or may not have landed.
 */
export class ConfigWriteError extends Error {
  override readonly name = 'ConfigWriteError';
  constructor(
    message: string,
    readonly refused: boolean,
    override readonly cause: unknown,
  ) {
    super(message);
  }
}

/**
 * The config as it is right now, checked to be writable back whole and still for this client.
 * Read just before writing, so that a field changed since the preflight is not reverted.
 */
export async function readConfigForWrite(rc: RunContext): Promise<OidcConfig> {
  const current = await readOidcConfig(rc.vault, rc.mount);
  if (!current) throw new ConfigWriteError(`auth/${rc.mount}/config disappeared during the run`, true, undefined);
  const problems = carryOverProblems(current);
  if (problems.length) throw new ConfigWriteError(`auth/${rc.mount}/config cannot be written back whole: ${problems.join('; ')}`, true, undefined);
  if (current.oidc_client_id !== rc.provider.client_id) {
    throw new ConfigWriteError(`auth/${rc.mount}/config changed to another client_id during the run`, true, undefined);
  }
  return current;
}

/** Writes `secret` into auth/<mount>/config with every other field as in `current`. */
export async function writeConfig(rc: RunContext, current: OidcConfig, secret: string): Promise<void> {
  try {
    // Idempotent: the same whole config written twice is the same config, so the shared client
    // may repeat it after a connection error or a 5xx.
    await rc.vault.write(`auth/${rc.mount}/config`, configWriteBody(current, secret), undefined, { idempotent: true });
  } catch (err) {
    const refused = err instanceof VaultError && err.status >= 400 && err.status < 500;
    throw new ConfigWriteError(`writing auth/${rc.mount}/config failed: ${(err as Error).message}`, refused, err);
  }
}

/** Both, for sync and recovery; returns the config as read before the write. */
export async function writeSecretToVault(rc: RunContext, secret: string): Promise<OidcConfig> {
  const current = await readConfigForWrite(rc);
  await writeConfig(rc, current, secret);
  return current;
}

/**
 * Vault and Authentik now both hold `secret`: check that a login would work, record it as
 * current (ending the pending change and the claim), and fail the run if a check did not pass.
 */
export async function completeChange(
  rc: RunContext,
  state: { version: number; data: RotationRecord },
  secret: string,
  mode: 'rotate' | 'sync' | 'recover',
  configBefore: OidcConfig,
): Promise<JobResult> {
  const verify = await verifyAfterWrite({
    vault: rc.vault,
    authentik: rc.authentik,
    mount: rc.mount,
    before: configBefore,
    clientId: rc.provider.client_id,
    secret,
    ...rc.loginCheck,
  });
  const now = new Date();
  const next = held(state.data.fingerprintKey, secret, fingerprint, now);
  const written = await rc.store.writeHeld(markCurrent(state.data, next, mode, now));
  rc.metrics.observe(written.data, true);
  Object.assign(rc.summary, {
    changed: true,
    fingerprint: fp(written.data.current?.fingerprint),
    previousFingerprint: fp(written.data.previous?.fingerprint),
    verify: verify.checks,
  });
  if (!verify.ok) {
    throw new JobFailure('the secret was changed on both sides, but a check afterwards failed', { failures: verify.failures, ...rc.summary });
  }
  rc.log.info({ ...verify.checks, fingerprint: fp(next.fingerprint) }, 'Vault and Authentik hold the same secret; the config reads back unchanged and a login can start');
  return { ...rc.summary };
}

/** For failure details: the error without anything that could hold a secret. */
export function errorDetail(err: unknown): Record<string, unknown> {
  return describeError(err instanceof ConfigWriteError && err.cause ? err.cause : err);
}
