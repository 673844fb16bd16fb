// Node's own handling of an unhandled rejection or uncaught exception prints the error with
// util.inspect on stderr (the whole object: an HTTP library's error holds request headers and
// response bodies, a Kubernetes ApiException a whole Secret) and exits. Every job routes both to
// its run instead, which logs them through the redacting logger and fails with exit 1.

export type UnhandledOrigin = 'unhandled rejection' | 'uncaught exception';
type Handler = (err: unknown, origin: UnhandledOrigin) => void;

let current: Handler | undefined;
let installed = false;

/** Sends every later unhandled rejection and uncaught exception of this process to `handler`. */
export function routeUnhandledErrors(handler: Handler): void {
  current = handler;
  if (installed) return;
  installed = true;
  process.on('unhandledRejection', (reason) => current?.(reason, 'unhandled rejection'));
  process.on('uncaughtException', (err) => current?.(err, 'uncaught exception'));
}
