import { registerSecret, z } from '@vaultkeeper/runtime';
import { breakGlassCredential, type BreakGlassCredential } from '../credential.ts';
import { SinkError, type CredentialSink, type Delivery } from './sink.ts';

/**
 * EXPERIMENTAL. Bitwarden Secrets Manager, through the official SDK (@bitwarden/sdk-napi) with a
 * machine-account access token read from Vault KV. No Bitwarden server can run in the test stack
 * (and Vaultwarden does not implement the Secrets Manager API), so this sink is unit-tested
 * against the narrow interface below, never against a server.
 */

/** The part of the Secrets Manager SDK this sink uses. */
export interface BitwardenSecretsApi {
  login(accessToken: string): Promise<void>;
  get(id: string): Promise<BitwardenSecret>;
  update(organizationId: string, id: string, key: string, value: string, note: string, projectIds: string[]): Promise<BitwardenSecret>;
}

export interface BitwardenSecret {
  id: string;
  organizationId: string;
  projectId?: string | null | undefined;
  key: string;
  value: string;
  note: string;
  revisionDate: Date | string;
}

export interface BitwardenSettings {
  organizationId: string;
  /** The secret that holds the credential; created once by hand, so people can share and find it. */
  secretId: string;
  /** Read from Vault KV by the job; never from the environment. */
  accessToken: string;
}

/** The public facts kept in the secret's note, beside instructions; the value is the secret alone. */
const noteFacts = breakGlassCredential.omit({ secret: true }).extend({ howToUse: z.array(z.string()).optional() });

export class BitwardenSink implements CredentialSink {
  readonly name = 'bitwarden';

  get location(): string {
    return `bitwarden://${this.settings.organizationId}/secrets/${this.settings.secretId}`;
  }
  private previous: BitwardenSecret | undefined;
  private loggedIn = false;

  constructor(
    private readonly api: BitwardenSecretsApi,
    private readonly settings: BitwardenSettings,
    /** The lines of instructions written into the note (reveal.ts renders them). */
    private readonly instructions: (credential: BreakGlassCredential) => string[],
  ) {
    registerSecret(settings.accessToken);
  }

  async preflight(): Promise<void> {
    await this.login();
    const secret = await this.step('preflight', () => this.api.get(this.settings.secretId));
    if (secret.organizationId !== this.settings.organizationId) {
      throw new SinkError(this.name, 'preflight', `secret ${this.settings.secretId} belongs to another organization`);
    }
    // Kept in memory only, to put back if this delivery has to be undone.
    registerSecret(secret.value);
    this.previous = secret;
  }

  async deliver(credential: BreakGlassCredential): Promise<Delivery> {
    if (!this.previous) await this.preflight();
    const prev = this.previous!;
    const { secret, ...facts } = credential;
    const note = JSON.stringify({ ...facts, howToUse: this.instructions(credential) }, null, 2);
    const res = await this.step('deliver', () =>
      this.api.update(this.settings.organizationId, this.settings.secretId, prev.key, secret, note, prev.projectId ? [prev.projectId] : []),
    );
    return this.deliveryOf(res);
  }

  async readBack(delivery: Delivery): Promise<BreakGlassCredential> {
    const found = await this.current();
    if (!found) throw new SinkError(this.name, 'read-back', `secret ${this.settings.secretId} holds no break-glass credential`);
    // Bitwarden keeps no versions we could address: a newer revision means someone else wrote it.
    if (found.delivery.version !== delivery.version) {
      throw new SinkError(this.name, 'read-back', `secret ${this.settings.secretId} changed after our write (revision ${found.delivery.version})`);
    }
    return found.credential;
  }

  async current(): Promise<{ delivery: Delivery; credential: BreakGlassCredential } | undefined> {
    await this.login();
    const secret = await this.step('read', () => this.api.get(this.settings.secretId));
    registerSecret(secret.value);
    let facts: unknown;
    try {
      facts = JSON.parse(secret.note);
    } catch {
      return undefined; // a note we did not write: not (yet) a break-glass credential
    }
    const parsed = noteFacts.safeParse(facts);
    if (!parsed.success) return undefined;
    const { howToUse: _howToUse, ...rest } = parsed.data;
    return { delivery: this.deliveryOf(secret), credential: { ...rest, secret: secret.value } };
  }

  async undo(credential: Pick<BreakGlassCredential, 'accessor'>): Promise<number> {
    // One value, no versions: it is ours to put back only while it holds this credential.
    if ((await this.current())?.credential.accessor !== credential.accessor) return 0;
    const prev = this.previous;
    if (!prev) throw new SinkError(this.name, 'undo', 'nothing to put back: the secret was never read before the delivery');
    await this.step('undo', () =>
      this.api.update(this.settings.organizationId, this.settings.secretId, prev.key, prev.value, prev.note, prev.projectId ? [prev.projectId] : []),
    );
    return 1;
  }

  private async login(): Promise<void> {
    if (this.loggedIn) return;
    await this.step('login', () => this.api.login(this.settings.accessToken));
    this.loggedIn = true;
  }

  private deliveryOf(secret: BitwardenSecret): Delivery {
    const version = new Date(secret.revisionDate).toISOString();
    return { location: `bitwarden://${this.settings.organizationId}/secrets/${this.settings.secretId}?revision=${version}`, version };
  }

  private async step<T>(step: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof SinkError) throw err;
      // The SDK's messages name the failing request, not the token (checked: "Access token is not
      // in a valid format", "error sending request for url ..."); scrubbing covers the rest.
      throw new SinkError(this.name, step, err instanceof Error ? err.message : String(err), { cause: err });
    }
  }
}

export interface BitwardenEndpoints {
  apiUrl: string;
  identityUrl: string;
}

// Loaded by a computed name so the bundler leaves it out: it is a native addon (it cannot be inlined
// into the one-file bundle), and only this experimental sink needs it. The image must then carry
// node_modules/@bitwarden/sdk-napi beside the bundle.
const SDK_PACKAGE = ['@bitwarden', 'sdk-napi'].join('/');
// LogLevel.Error in the SDK's binding (a const enum, so not importable at run time).
const SDK_LOG_ERROR = 4;

/** The real SDK behind BitwardenSecretsApi. */
export async function loadBitwardenSdk(endpoints: BitwardenEndpoints): Promise<BitwardenSecretsApi> {
  type Sdk = typeof import('@bitwarden/sdk-napi');
  let sdk: Sdk;
  try {
    const mod = (await import(SDK_PACKAGE)) as Sdk & { default?: Sdk };
    // A CommonJS package: its exports arrive named or under `default`, depending on what Node detects.
    sdk = typeof mod.BitwardenClient === 'function' ? mod : mod.default!;
  } catch (err) {
    throw new SinkError('bitwarden', 'load', `cannot load ${SDK_PACKAGE} (${(err as Error).message}); the Bitwarden sink needs it installed beside the job`);
  }
  const client = new sdk.BitwardenClient(
    { apiUrl: endpoints.apiUrl, identityUrl: endpoints.identityUrl, userAgent: 'vaultkeeper-emergency-token', deviceType: sdk.DeviceType.SDK },
    SDK_LOG_ERROR,
  );
  return {
    login: (accessToken) => client.auth().loginAccessToken(accessToken),
    get: (id) => client.secrets().get(id),
    update: (organizationId, id, key, value, note, projectIds) => client.secrets().update(organizationId, id, key, value, note, projectIds),
  };
}
