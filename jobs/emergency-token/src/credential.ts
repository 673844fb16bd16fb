import { z } from '@vaultkeeper/runtime';

/**
 * The two kinds of break-glass credential this job can keep:
 * - `launcher`: an orphan, non-renewable token from the token role `breakglass-launcher` whose only
 *   power is minting 1h admin tokens through the token role `breakglass-admin` (see launcher.ts);
 * - `approle-secret-id`: a one-use AppRole secret ID whose login yields a 1h admin token
 *   (see approle-secret-id.ts).
 */
export const CREDENTIAL_KINDS = ['launcher', 'approle-secret-id'] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

/**
 * What a sink stores and `reveal` shows: the secret and what a person needs to use it on the bad
 * day. The only object in this job that holds the secret; it is never logged (its `secret` field
 * is also registered for scrubbing the moment it exists).
 */
export const breakGlassCredential = z.object({
  kind: z.enum(CREDENTIAL_KINDS),
  /** The launcher token, or the AppRole secret ID. */
  secret: z.string().min(1),
  /** AppRole only: the role ID a login needs beside the secret ID (not secret on its own). */
  roleId: z.string().optional(),
  /** Token accessor, or secret-ID accessor: what the job looks up and revokes it by. */
  accessor: z.string().min(1),
  createdAt: z.iso.datetime({ offset: true }),
  expiresAt: z.iso.datetime({ offset: true }),
  fingerprint: z.string().min(1),
  /** The Vault address an operator uses (not necessarily the in-cluster one the job uses). */
  vaultAddress: z.string().min(1),
  /** Launcher: the token role that mints admin tokens. AppRole: `<mount>/<role>`. */
  mintWith: z.string().min(1),
  purpose: z.string(),
  rotatedBy: z.string(),
  runId: z.string(),
});
export type BreakGlassCredential = z.infer<typeof breakGlassCredential>;

/** The metadata a new credential carries into Vault (token meta or secret-ID metadata). */
export interface IssueMeta {
  purpose: string;
  rotatedAt: string;
  rotatedBy: string;
  runId: string;
}

/** What Vault says about a credential, found by its accessor. */
export type CredentialStatus =
  | { alive: true; createdAt: string; expiresAt: string }
  | { alive: false };

/** A credential just issued: everything except where it goes and its fingerprint. */
export type IssuedCredential = Omit<BreakGlassCredential, 'fingerprint' | 'vaultAddress' | 'purpose' | 'rotatedBy' | 'runId'>;

/** One kind of credential: how it is made, proven, looked up and ended. Every call talks to Vault. */
export interface CredentialIssuer {
  readonly kind: CredentialKind;
  /** What `mintWith` says for this issuer (shown by reveal). */
  readonly mintWith: string;
  issue(meta: IssueMeta, signal?: AbortSignal): Promise<IssuedCredential>;
  /** Proves the credential works without spending it; throws ProofFailed when it does not. */
  prove(credential: BreakGlassCredential, signal?: AbortSignal): Promise<void>;
  status(accessor: string, signal?: AbortSignal): Promise<CredentialStatus>;
  /** Ends it; `gone` when it had already expired or been revoked. */
  revoke(accessor: string, signal?: AbortSignal): Promise<'revoked' | 'gone'>;
}

/** The new credential did not do what it should: it is revoked and the old one kept. */
export class ProofFailed extends Error {
  override readonly name = 'ProofFailed';
  constructor(
    message: string,
    readonly check: string,
  ) {
    super(message);
  }
}
