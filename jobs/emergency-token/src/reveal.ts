import { JobFailure, registerSecret } from '@vaultkeeper/runtime';
import type { BreakGlassCredential } from './credential.ts';
import { fingerprint, sameFingerprint } from './fingerprint.ts';
import type { CredentialSink } from './sinks/sink.ts';

/** Quotes a value for a POSIX shell: single quotes, with embedded single quotes closed and escaped. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The exact commands that turn the stored credential into a 1h admin token. The secret is never
 * part of a command line (it would land in shell history and in `ps`): it is pasted into `read -rs`,
 * which does not echo, and handed to the CLI through the environment or stdin.
 */
export function mintCommands(c: Pick<BreakGlassCredential, 'kind' | 'vaultAddress' | 'mintWith' | 'roleId'>, cli = 'vault'): string[] {
  if (c.kind === 'launcher') {
    return [
      `read -rs BREAKGLASS_LAUNCHER   # paste the launcher token, then Enter (nothing is echoed)`,
      `export VAULT_ADDR=${shellQuote(c.vaultAddress)}`,
      `export VAULT_TOKEN="$(VAULT_TOKEN="$BREAKGLASS_LAUNCHER" ${cli} token create -role=${c.mintWith} -field=token)"`,
      `unset BREAKGLASS_LAUNCHER`,
      `${cli} token lookup   # policies include the admin policy; renewable false; ttl at most 1h`,
    ];
  }
  const [mount, role] = splitMount(c.mintWith);
  return [
    `read -rs BREAKGLASS_SECRET_ID   # paste the secret ID, then Enter (nothing is echoed); it works once`,
    `export VAULT_ADDR=${shellQuote(c.vaultAddress)}`,
    `export VAULT_TOKEN="$(printf '%s' "$BREAKGLASS_SECRET_ID" | ${cli} write -field=token auth/${mount}/login role_id=${shellQuote(c.roleId ?? '')} secret_id=-)"`,
    `unset BREAKGLASS_SECRET_ID`,
    `${cli} token lookup   # role ${role}: the admin policy, ttl at most 1h`,
  ];
}

function splitMount(mintWith: string): [string, string] {
  const i = mintWith.lastIndexOf('/');
  return i < 0 ? ['approle', mintWith] : [mintWith.slice(0, i), mintWith.slice(i + 1)];
}

/** What `reveal` prints on the terminal: the facts, the credential, and the commands. */
export function renderReveal(c: BreakGlassCredential, location: string, cli: string, now = new Date()): string {
  const what = c.kind === 'launcher' ? 'launcher token (mints 1h admin tokens)' : 'AppRole secret ID (one login, 1h admin token)';
  const hoursLeft = (Date.parse(c.expiresAt) - now.getTime()) / 3_600_000;
  const lines = [
    '',
    `Break-glass credential: ${what}`,
    `  accessor     ${c.accessor}`,
    `  created      ${c.createdAt} by ${c.rotatedBy}`,
    `  expires      ${c.expiresAt}${hoursLeft <= 0 ? '   EXPIRED: it will not work' : ` (in ${Math.floor(hoursLeft / 24)}d ${Math.floor(hoursLeft % 24)}h)`}`,
    `  fingerprint  ${c.fingerprint}`,
    `  stored at    ${location}`,
    ...(c.roleId ? [`  role ID      ${c.roleId}`] : []),
    '',
    `  ${c.secret}`,
    '',
    'To get a 1h admin token (the `vault` and `bao` CLIs take the same commands; set VAULT_CACERT too if Vault uses a private CA):',
    '',
    ...mintCommands(c, cli).map((l) => `  ${l}`),
    '',
    ...(c.kind === 'launcher'
      ? [
          `When done: \`${cli} token revoke -self\`. Once OIDC login works again: \`${cli} token revoke -accessor ${c.accessor}\``,
          'and run the job, which then rotates at once (runbook: docs/emergency-token.md).',
        ]
      : [`When done: \`${cli} token revoke -self\`. Your login spent the secret ID: the job's next run replaces it.`]),
    '',
  ];
  return lines.join('\n');
}

export interface RevealOptions {
  sink: CredentialSink;
  /** Where to print: the terminal. */
  out: NodeJS.WriteStream;
  /** Print even when `out` is not a terminal (a pipe or a file would keep the secret). */
  force: boolean;
  cli: string;
  signal?: AbortSignal;
  /** Said when the sink holds nothing (where else to look). */
  whenEmpty?: string;
}

/** Decrypts the current credential and shows it on a terminal, refusing pipes and files unless forced. */
export async function reveal(opts: RevealOptions): Promise<{ accessor: string; expiresAt: string; location: string; kind: string }> {
  if (!opts.out.isTTY && !opts.force) {
    throw new JobFailure('refusing to print the break-glass credential: standard output is not a terminal (use --force to print it anyway)', {
      check: 'terminal',
    });
  }
  const found = await opts.sink.current(opts.signal);
  if (!found) throw new JobFailure(`no break-glass credential in the ${opts.sink.name} sink${opts.whenEmpty ? `; ${opts.whenEmpty}` : ''}`);
  const { credential, delivery, note } = found;
  registerSecret(credential.secret);
  if (!sameFingerprint(fingerprint(credential.secret), credential.fingerprint)) {
    throw new JobFailure('the stored credential does not match its own fingerprint; it is damaged', { check: 'fingerprint' });
  }
  // Deliberately not through the logger (which would scrub it): this is the one place it is shown.
  opts.out.write(renderReveal(credential, delivery.location, opts.cli) + (note ? `Note: ${note}.\n\n` : ''));
  return { accessor: credential.accessor, expiresAt: credential.expiresAt, location: delivery.location, kind: credential.kind };
}
