// A VaultClient for tests against the stack: the stack's address and CA unless told otherwise.
import { readFileSync } from 'node:fs';
import { createLogger, type Logger } from '@vaultkeeper/runtime';
import { VaultClient, type VaultConfig } from '@vaultkeeper/vault';
import { readStack } from '../stack/stack.ts';

const silent = createLogger({ job: 'test', level: 'silent' });

/** The `vault` config section a job would get against the stack (admin address: the active-only Service). */
export function stackVaultConfig(overrides: Partial<VaultConfig> = {}): VaultConfig {
  const stack = readStack();
  // A node asked by its own address: its certificate names the Service only, so say which name
  // to check it against, as an operator would with VAULT_TLS_SERVER_NAME.
  const nodeAddress = stack.openbao.nodes.some((n) => n.addr === overrides.address);
  return {
    ...(nodeAddress && stack.openbao.tls ? { tlsServerName: stack.openbao.tls.serverName } : {}),
    address: stack.openbao.addr,
    fallbackAddresses: [],
    allowInsecureHttp: false,
    auth: { mount: 'kubernetes', tokenPath: '' },
    requestTimeoutSeconds: 10,
    callDeadlineSeconds: 30,
    ...(stack.openbao.tls ? { caCert: stack.openbao.tls.caFile } : {}),
    ...overrides,
  };
}

/** A client as connectVault would build it (CA read from caCert), without logging in. */
export function stackVaultClient(overrides: Partial<VaultConfig> = {}, log: Logger = silent, signal?: AbortSignal): VaultClient {
  const cfg = stackVaultConfig(overrides);
  return new VaultClient(cfg, log, signal, cfg.caCert ? readFileSync(cfg.caCert, 'utf8') : undefined);
}

/** A client holding the stack's root token (not its own: never revoked by the client). */
export function rootVaultClient(overrides: Partial<VaultConfig> = {}): VaultClient {
  const c = stackVaultClient(overrides);
  c.setToken(readStack().openbao.rootToken, false);
  return c;
}
