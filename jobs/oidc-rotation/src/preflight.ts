// Everything checked before either mode touches anything. A refusal names every problem at
// once, so one fix-and-rerun is enough.
import type { Application, AuthentikClient, OAuth2Provider } from '@vaultkeeper/authentik';
import { JobFailure } from '@vaultkeeper/runtime';
import type { VaultClient } from '@vaultkeeper/vault';
import { carryOverProblems, readOidcRole, type OidcConfig } from './oidc-config.ts';
import type { RotationRecord } from './rotation-record.ts';

export interface ProviderSelector {
  application: string;
  providerId?: number | undefined;
  clientId?: string | undefined;
}

/** The provider as configured: pinned by ID or client_id, else the application's own. */
export async function locateProvider(authentik: AuthentikClient, sel: ProviderSelector): Promise<{ provider: OAuth2Provider; application: Application }> {
  const application = await authentik.getApplication(sel.application);
  let provider: OAuth2Provider | undefined;
  if (sel.providerId !== undefined) provider = await authentik.getProvider(sel.providerId);
  else if (sel.clientId !== undefined) provider = await authentik.findProviderByClientId(sel.clientId);
  else if (application.provider !== null) provider = await authentik.getProvider(application.provider);
  if (!provider) {
    throw new JobFailure(
      sel.clientId !== undefined
        ? `no Authentik OAuth2 provider has the configured client_id`
        : `Authentik application "${sel.application}" has no provider`,
    );
  }
  return { provider, application };
}

export interface PreflightInput {
  provider: OAuth2Provider;
  application: Application;
  expectedApplication: string;
  pinnedClientId?: string | undefined;
  vaultConfig: OidcConfig;
  mount: string;
  record: RotationRecord | undefined;
}

/** What makes a rotation or sync unsafe or pointless; empty when it may go ahead. */
export function preflightProblems(p: PreflightInput): string[] {
  const problems: string[] = [];
  const { provider } = p;
  if (provider.client_type !== 'confidential') {
    problems.push(`Authentik provider ${provider.pk} is a ${provider.client_type} client: a public client has no secret to rotate; Vault's OIDC login needs a confidential one`);
  }
  if (provider.signing_key === null) {
    problems.push(
      `Authentik provider ${provider.pk} has no signing key: Authentik then signs ID tokens with HS256 keyed by the client secret, and Vault's login fails; select a certificate as its signing key`,
    );
  }
  if (provider.assigned_application_slug !== p.expectedApplication || p.application.provider !== provider.pk) {
    problems.push(
      `Authentik provider ${provider.pk} does not belong to application "${p.expectedApplication}" ` +
        `(provider's application: ${provider.assigned_application_slug ?? 'none'}; application's provider: ${p.application.provider ?? 'none'})`,
    );
  }
  if (p.pinnedClientId !== undefined && provider.client_id !== p.pinnedClientId) {
    problems.push(`Authentik provider ${provider.pk} has another client_id than the one configured`);
  }
  const cfg = p.vaultConfig;
  if (!cfg.oidc_discovery_url) {
    problems.push(`auth/${p.mount}/config has no oidc_discovery_url: it is not an OIDC login config`);
  }
  if (cfg.oidc_client_id !== provider.client_id) {
    problems.push(
      `auth/${p.mount}/config uses another client_id than Authentik provider ${provider.pk}: Vault is configured for a different client, refusing to give it this provider's secret`,
    );
  }
  problems.push(...carryOverProblems(cfg).map((m) => `auth/${p.mount}/config: ${m}`));
  if (p.record) {
    if (p.record.clientId !== provider.client_id || p.record.mount !== p.mount) {
      problems.push(
        `the rotation record belongs to another provider or mount (client ${p.record.clientId === provider.client_id ? 'same' : 'differs'}, mount ${p.record.mount}); give this one its own record.path`,
      );
    }
  }
  return problems;
}

/** The role and redirect URI the auth_url check will use, or why there are none. */
export async function loginCheckTarget(
  vault: VaultClient,
  mount: string,
  cfg: OidcConfig,
  configured: { role?: string | undefined; redirectUri?: string | undefined },
): Promise<{ role: string; redirectUri: string } | { problem: string }> {
  const role = configured.role ?? (cfg.default_role || undefined);
  if (!role) return { problem: `auth/${mount}/config has no default_role; set oidc.role to the role people log in with` };
  const found = await readOidcRole(vault, mount, role);
  if (!found) return { problem: `auth/${mount}/role/${role} does not exist` };
  const redirectUri = configured.redirectUri ?? found.allowed_redirect_uris?.[0];
  if (!redirectUri) return { problem: `auth/${mount}/role/${role} allows no redirect URI; set oidc.redirectUri` };
  return { role, redirectUri };
}
