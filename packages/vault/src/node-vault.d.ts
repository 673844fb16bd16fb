// node-vault ships no types; this declares the part of it vaultkeeper uses.
declare module 'node-vault' {
  interface RequestPromiseLike {
    defaults(options: Record<string, unknown>): (options: NodeVaultRequest) => Promise<NodeVaultResponse>;
  }
  export interface NodeVaultRequest {
    method: string;
    uri: string;
    headers?: Record<string, string>;
    json?: unknown;
    [extra: string]: unknown;
  }
  export interface NodeVaultResponse {
    statusCode: number;
    body: unknown;
    request: { path: string };
  }
  export interface NodeVaultOptions {
    endpoint: string;
    apiVersion?: string;
    token?: string;
    namespace?: string;
    noCustomHTTPVerbs?: boolean;
    debug?: (...args: unknown[]) => void;
    'request-promise'?: RequestPromiseLike;
  }
  export interface NodeVaultClient {
    token: string | undefined;
    read(path: string, requestOptions?: Record<string, unknown>): Promise<unknown>;
    write(path: string, data: unknown, requestOptions?: Record<string, unknown>): Promise<unknown>;
    list(path: string, requestOptions?: Record<string, unknown>): Promise<unknown>;
    delete(path: string, requestOptions?: Record<string, unknown>): Promise<unknown>;
    kubernetesLogin(args: { role: string; jwt: string; mount_point: string; requestOptions?: Record<string, unknown> }): Promise<unknown>;
    tokenRevokeSelf(args?: { requestOptions?: Record<string, unknown> }): Promise<unknown>;
  }
  const factory: (options: NodeVaultOptions) => NodeVaultClient;
  export default factory;
}
