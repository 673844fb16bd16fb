import { z } from 'zod';
import type { components } from './schema.gen.ts';

type Schemas = components['schemas'];

/*
 * Runtime checks for the fields vaultkeeper relies on. They are stricter than the OpenAPI types
 * where upstream marks a field optional only because the model has a default (client_id,
 * client_secret, client_type are always rendered by Authentik's serializer): a response without
 * them is a broken Authentik or a proxy answering in its place, and the job must stop there.
 * Unknown fields are dropped.
 */

const redirectUriSchema = z.object({
  matching_mode: z.enum(['strict', 'regex']),
  url: z.string(),
});

export const oauth2ProviderSchema = z.object({
  pk: z.int(),
  name: z.string(),
  client_type: z.enum(['confidential', 'public']),
  client_id: z.string().min(1),
  client_secret: z.string(),
  signing_key: z.string().nullable(),
  assigned_application_slug: z.string().nullable(),
  assigned_application_name: z.string().nullable(),
  authorization_flow: z.string(),
  redirect_uris: z.array(redirectUriSchema),
});

export const applicationSchema = z.object({
  pk: z.string(),
  name: z.string(),
  slug: z.string(),
  provider: z.int().nullable(),
});

export const providerListSchema = z.object({
  pagination: z.object({
    next: z.number(),
    previous: z.number(),
    count: z.number(),
    current: z.number(),
    total_pages: z.number(),
    start_index: z.number(),
    end_index: z.number(),
  }),
  results: z.array(oauth2ProviderSchema),
});

export const openIdConfigurationSchema = z.object({
  issuer: z.string().min(1),
  authorization_endpoint: z.string(),
  token_endpoint: z.string(),
  jwks_uri: z.string(),
  userinfo_endpoint: z.string().optional(),
  revocation_endpoint: z.string().optional(),
  response_types_supported: z.array(z.string()),
  subject_types_supported: z.array(z.string()),
  id_token_signing_alg_values_supported: z.array(z.string()),
  token_endpoint_auth_methods_supported: z.array(z.string()).optional(),
});

export const oauth2ErrorSchema = z.object({ error: z.string(), error_description: z.string().optional() });

/** An OAuth2/OpenID provider as vaultkeeper sees it (a checked subset of Authentik's OAuth2Provider). */
export type OAuth2Provider = z.infer<typeof oauth2ProviderSchema>;
/** An application as vaultkeeper sees it (a checked subset of Authentik's Application). */
export type Application = z.infer<typeof applicationSchema>;
/** The fields of a provider's OpenID discovery document vaultkeeper reads. */
export type OpenIdConfiguration = z.infer<typeof openIdConfigurationSchema>;

// Compile-time guard: every field checked at runtime is one the subset (and so upstream) declares.
type KeysWithin<A, B> = Exclude<keyof A, keyof B> extends never ? true : never;
const fieldsAreInSubset: [
  KeysWithin<OAuth2Provider, Schemas['OAuth2Provider']>,
  KeysWithin<Application, Schemas['Application']>,
  KeysWithin<OpenIdConfiguration, Schemas['VaultkeeperOpenIDConfiguration']>,
] = [true, true, true];
void fieldsAreInSubset;
