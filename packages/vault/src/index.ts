export { VaultClient, isRetryable, type CallOptions, type RawCallOptions, type VaultEnvelope } from './client.ts';
export { vaultConfig, isLoopback, type VaultConfig } from './config.ts';
export { connectVault, type ConnectContext, type ConnectOptions } from './connect.ts';
export { clusterIdentity, type ClusterIdentity } from './cluster-identity.ts';
export { VaultError, VaultResponseShapeError, VaultTlsError, VaultUnreachableError } from './errors.ts';
export type { HttpResponse } from './transport.ts';
