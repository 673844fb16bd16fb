// A person's whole OIDC login through OpenBao against the Authentik stand-in, and what happens
// when Vault's copy of the client secret is not Authentik's current one (the failure the
// oidc-rotation job exists to prevent). Every test leaves auth/oidc/config with the provider's
// current secret, so the shared stack is as it found it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAuthentikClient, type AuthentikClient } from '@vaultkeeper/authentik';
import { API_TOKEN_KV_PATH, vaultRequest, writeOidcConfig } from '../authentik-standin/launch.ts';
import { OidcLoginError, oidcLoginThroughVault } from '../authentik-standin/oidc-login.ts';
import { readStack, type StackInfo } from '../stack/stack.ts';

interface OidcWiring {
  providerPk: number;
  clientId: string;
  issuer: string;
}

let stack: StackInfo;
let authentik: AuthentikClient;
let wiring: OidcWiring;
let standin: { url: string; apiToken: string };

const root = (method: string, path: string, body?: unknown) => vaultRequest(stack.openbao.addr, stack.openbao.rootToken, method, path, body);
const admin = async (path: string, init: RequestInit = {}) => {
  const res = await fetch(`${standin.url}/_standin${path}`, { ...init, headers: { Authorization: `Bearer ${standin.apiToken}`, 'Content-Type': 'application/json' } });
  if (!res.ok) throw new Error(`stand-in admin ${path}: HTTP ${res.status}`);
  return res.json() as Promise<Record<string, unknown>>;
};

/** Vault gets the secret Authentik has now. */
async function syncVaultToAuthentik(): Promise<void> {
  const p = await authentik.getProvider(wiring.providerPk);
  await writeOidcConfig(stack.openbao.addr, stack.openbao.rootToken, { issuer: wiring.issuer, clientId: p.client_id, clientSecret: p.client_secret });
}

beforeAll(() => {
  stack = readStack();
  if (!stack.authentik) throw new Error('the stack runs without the Authentik stand-in (stack.json authentik: null): run `pnpm stack:down && pnpm stack:up`');
  standin = stack.authentik;
  authentik = createAuthentikClient({ baseUrl: standin.url, token: standin.apiToken, timeoutMs: 10_000 });
  wiring = JSON.parse(readFileSync(join(stack.stateDir, 'authentik', 'oidc.json'), 'utf8')) as OidcWiring;
});

afterEach(async () => {
  await syncVaultToAuthentik();
});

describe('OIDC login through OpenBao with the Authentik stand-in', () => {
  it('logs a person in: auth_url -> authorize -> callback -> a Vault token with the role policies and claims', async () => {
    await admin('/requests', { method: 'DELETE' });
    const login = await oidcLoginThroughVault(stack.openbao.addr, { role: 'default' });
    expect(login.token).toMatch(/^s\./);
    expect(login.policies).toEqual(['default']);
    expect(login.metadata).toMatchObject({ role: 'default', username: 'vk-test-user', email: 'vk-test-user@example.test' });

    const self = (await vaultRequest(stack.openbao.addr, login.token, 'GET', 'auth/token/lookup-self')) as { data: Record<string, unknown> };
    expect(self.data).toMatchObject({ path: 'auth/oidc/oidc/callback', policies: ['default'] });
    expect(self.data.ttl as number).toBeLessThanOrEqual(15 * 60);
    expect(self.data.ttl as number).toBeGreaterThan(14 * 60);

    // Vault exchanged the code itself, with HTTP Basic client auth and PKCE, then called userinfo.
    const { requests } = (await admin('/requests')) as { requests: { path: string; status: number; clientAuth?: string; bodyKeys?: string[] }[] };
    const exchange = requests.filter((r) => r.path === '/application/o/token/');
    expect(exchange).toHaveLength(1);
    expect(exchange[0]).toMatchObject({ status: 200, clientAuth: 'basic' });
    expect(exchange[0]!.bodyKeys).toContain('code_verifier');
    expect(requests.some((r) => r.path === '/application/o/userinfo/' && r.status === 200)).toBe(true);

    await vaultRequest(stack.openbao.addr, login.token, 'POST', 'auth/token/revoke-self');
  });

  it('also works through a standby node (OpenBao forwards to the active node, which holds the OIDC state)', async () => {
    const standby = stack.openbao.nodes.find((n) => n.addr !== stack.openbao.addr)!;
    const login = await oidcLoginThroughVault(standby.addr);
    expect(login.policies).toEqual(['default']);
    await vaultRequest(stack.openbao.addr, login.token, 'POST', 'auth/token/revoke-self');
  });

  it('fails when Vault holds a wrong client secret: Authentik refuses the code exchange (invalid_client)', async () => {
    await writeOidcConfig(stack.openbao.addr, stack.openbao.rootToken, { issuer: wiring.issuer, clientId: wiring.clientId, clientSecret: 'not-the-secret' });
    const err = await oidcLoginThroughVault(stack.openbao.addr).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OidcLoginError);
    expect((err as OidcLoginError).step).toBe('callback');
    expect((err as OidcLoginError).message).toContain('invalid_client');
  });

  it('fails after someone rotates the secret in Authentik only, and works again once Vault has the new one', async () => {
    const before = await authentik.getProvider(wiring.providerPk);
    await admin(`/providers/${wiring.providerPk}/secret`, { method: 'POST' });
    const after = await authentik.getProvider(wiring.providerPk);
    expect(after.client_secret).not.toBe(before.client_secret);
    expect(await authentik.checkClientSecret(after.client_id, before.client_secret)).toBe(false);

    await expect(oidcLoginThroughVault(stack.openbao.addr)).rejects.toThrow(/invalid_client/);

    await syncVaultToAuthentik();
    const login = await oidcLoginThroughVault(stack.openbao.addr);
    expect(login.policies).toEqual(['default']);
    await vaultRequest(stack.openbao.addr, login.token, 'POST', 'auth/token/revoke-self');
  });

  it('refuses a redirect_uri the role does not allow', async () => {
    await expect(oidcLoginThroughVault(stack.openbao.addr, { redirectUri: 'http://127.0.0.1:9999/elsewhere' })).rejects.toMatchObject({ step: 'auth_url' });
  });

  it('reading auth/oidc/config does not return the client secret', async () => {
    const cfg = (await root('GET', 'auth/oidc/config')) as { data: Record<string, unknown> };
    expect(cfg.data).toMatchObject({ oidc_discovery_url: wiring.issuer, oidc_client_id: wiring.clientId, default_role: 'default' });
    expect(cfg.data.oidc_discovery_url).toMatch(/\/application\/o\/vault\/$/);
    expect(cfg.data).not.toHaveProperty('oidc_client_secret');
  });

  it('OpenBao refuses a discovery URL that differs from the issuer only by the trailing slash', async () => {
    const p = await authentik.getProvider(wiring.providerPk);
    await expect(
      writeOidcConfig(stack.openbao.addr, stack.openbao.rootToken, { issuer: wiring.issuer.replace(/\/$/, ''), clientId: p.client_id, clientSecret: p.client_secret }),
    ).rejects.toThrow(/error checking oidc discovery URL/);
  });

  it('keeps the Authentik API token in KV v2 for the jobs', async () => {
    const kv = (await root('GET', API_TOKEN_KV_PATH)) as { data: { data: { token: string } } };
    expect(kv.data.data.token).toBe(standin.apiToken);
  });
});
