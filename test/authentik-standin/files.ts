import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where a stand-in keeps things inside its state dir. */
export const API_TOKEN_FILE = 'api-token';
export const STATE_FILE = 'standin-state.json';

/** The token a stand-in in `stateDir` accepts: the one on disk, or a new random one written there 0600. */
export function ensureApiToken(stateDir: string): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, API_TOKEN_FILE);
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token) return token;
  }
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

