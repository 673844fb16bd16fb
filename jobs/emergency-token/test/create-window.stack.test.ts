// Why the window between creating a launcher and recording it stays open (docs/emergency-token.md,
// "Why the gap stays open"), asked of the real OpenBao with exactly the job's policy: the job
// cannot choose a token's ID up front, and cannot enumerate tokens to find one afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from '@vaultkeeper/runtime';
import { VaultError, type VaultClient } from '@vaultkeeper/vault';
import { bootstrapEmergencyToken, clientWith, rootVault } from './stack-fixture.ts';

let asJob: VaultClient;
let jobAccessor = '';

beforeAll(async () => {
  await bootstrapEmergencyToken();
  const root = await rootVault();
  try {
    const res = await root.call('auth/token/create', { method: 'POST', body: { policies: ['vaultkeeper-emergency-token'], no_default_policy: true, ttl: '10m' } });
    const auth = z.object({ auth: z.object({ client_token: z.string(), accessor: z.string() }) }).parse(res.body).auth;
    jobAccessor = auth.accessor;
    asJob = await clientWith(auth.client_token);
  } finally {
    root.close();
  }
});

afterAll(async () => {
  await asJob?.call('auth/token/revoke-self', { method: 'POST' }).catch(() => undefined);
  asJob?.close();
});

async function refusal(fn: () => Promise<unknown>): Promise<VaultError> {
  const err = await fn().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VaultError);
  return err as VaultError;
}

describe('the create-to-record window, against the real token store', () => {
  it('the job cannot name the launcher before Vault makes it: an explicit id needs root or sudo', async () => {
    const err = await refusal(() => asJob.call('auth/token/create/breakglass-launcher', { method: 'POST', body: { id: 'chosen-by-the-job', ttl: '1h' } }));
    expect(err.status).toBe(400);
    expect(err.errors.join(' ')).toMatch(/root or sudo privileges required to specify token id/);
  });

  it('the job cannot find a token by its metadata afterwards: listing accessors needs sudo', async () => {
    const err = await refusal(() => asJob.call('auth/token/accessors', { method: 'LIST' }));
    expect(err.status).toBe(403);
    // The refusal is of listing, not of a dead token: the same token looks a token up when it
    // already knows the accessor (as the job does for the ones it recorded).
    const known = z.object({ data: z.looseObject({ accessor: z.string() }) }).parse((await asJob.call('auth/token/lookup-accessor', { method: 'POST', body: { accessor: jobAccessor } })).body);
    expect(known.data.accessor).toBe(jobAccessor);
  });
});
