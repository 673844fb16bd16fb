export { createAuthentikClient, type AuthentikClient, type AuthentikClientOptions } from './client.ts';
export { AuthentikError, isAuthentikError, type AuthentikErrorKind } from './errors.ts';
export type { Application, OAuth2Provider, OpenIdConfiguration } from './models.ts';
export type { components, paths } from './schema.gen.ts';
