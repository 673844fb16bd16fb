/**
 * The Authentik stand-in as a process:
 *   tsx test/authentik-standin/main.ts --port 19000 --state-dir DIR
 * Binds 127.0.0.1 only. The API token is the one in DIR/api-token (created, mode 0600, when
 * absent), so it never appears on a command line or in the environment. State lives in DIR/standin-state.json, so a restart keeps
 * providers, secrets and the signing key.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureApiToken, STATE_FILE } from './files.ts';
import { createStandin } from './server.ts';

function main(): void {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '19000' }, 'state-dir': { type: 'string' } },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--port must be 0..65535');
  if (!values['state-dir']) throw new Error('--state-dir is required');
  const stateDir = resolve(values['state-dir']);
  const apiToken = ensureApiToken(stateDir);

  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const server = createStandin({
    apiToken,
    stateFile: join(stateDir, STATE_FILE),
    ...(port ? { issuerBase: `http://127.0.0.1:${port}` } : {}),
    log,
  });
  server.listen(port, '127.0.0.1', () => {
    const addr = server.address();
    log(`authentik stand-in listening on http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port} (state ${stateDir})`);
  });
  server.on('error', (err) => {
    log(`authentik stand-in failed: ${err.message}`);
    process.exitCode = 1;
  });
  const stop = (signal: string): void => {
    log(`authentik stand-in stopping (${signal})`);
    server.close();
    server.closeAllConnections();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main();
