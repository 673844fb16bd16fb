import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { BreakGlassCredential } from '../src/credential.ts';
import { fingerprint } from '../src/fingerprint.ts';
import { mintCommands, renderReveal, reveal, shellQuote } from '../src/reveal.ts';
import type { CredentialSink } from '../src/sinks/sink.ts';

const secret = 's.RevealUnitTestToken0123456';
const credential: BreakGlassCredential = {
  kind: 'launcher',
  secret,
  accessor: 'acc-1',
  createdAt: '2026-01-01T00:00:00.000Z',
  expiresAt: '2099-01-01T00:00:00.000Z',
  fingerprint: fingerprint(secret),
  vaultAddress: "https://vault.example.com:8200/it's",
  mintWith: 'breakglass-admin',
  purpose: 'test',
  rotatedBy: 'vaultkeeper-emergency-token',
  runId: 'r1',
};

/** A sink that holds one credential in memory: only what reveal itself needs. */
function holding(c: BreakGlassCredential | undefined): CredentialSink {
  return {
    name: 'memory',
    location: 'memory://x',
    preflight: async () => undefined,
    deliver: async () => ({ location: 'memory://x', version: '1' }),
    readBack: async () => c!,
    current: async () => (c ? { delivery: { location: 'memory://x?v=1', version: '1' }, credential: c } : undefined),
    undo: async () => 0,
  };
}

function terminal(isTTY: boolean): NodeJS.WriteStream & { text: () => string } {
  const s = new PassThrough() as unknown as NodeJS.WriteStream & { text: () => string };
  let buf = '';
  (s as unknown as PassThrough).on('data', (c: Buffer) => (buf += c));
  Object.assign(s, { isTTY, text: () => buf });
  return s;
}

describe('shellQuote', () => {
  it('survives a round trip through sh', () => {
    for (const v of ["a'b", 'a b', '$(id)', '`x`', '"q"', "''"]) {
      expect(execFileSync('sh', ['-c', `printf %s ${shellQuote(v)}`], { encoding: 'utf8' })).toBe(v);
    }
  });
});

describe('mintCommands', () => {
  it('keeps the secret off every command line', () => {
    const lines = mintCommands(credential, 'bao');
    expect(lines.join('\n')).not.toContain(secret);
    expect(lines[0]).toMatch(/^read -rs BREAKGLASS_LAUNCHER/);
    expect(lines.join('\n')).toContain('bao token create -role=breakglass-admin -field=token');
    expect(lines.join('\n')).toContain(`export VAULT_ADDR='https://vault.example.com:8200/it'\\''s'`);
  });

  it('gives an AppRole login reading the secret ID from stdin', () => {
    const lines = mintCommands({ ...credential, kind: 'approle-secret-id', mintWith: 'approle/breakglass', roleId: 'role-1' }, 'vault').join('\n');
    expect(lines).toContain("vault write -field=token auth/approle/login role_id='role-1' secret_id=-");
  });
});

describe('reveal', () => {
  it('refuses a pipe or a file unless forced, before reading anything', async () => {
    const out = terminal(false);
    await expect(reveal({ sink: holding(credential), out, force: false, cli: 'bao' })).rejects.toThrow(/not a terminal/);
    expect(out.text()).toBe('');
  });

  it('shows the credential and the commands on a terminal', async () => {
    const out = terminal(true);
    const r = await reveal({ sink: holding(credential), out, force: false, cli: 'bao' });
    expect(r).toMatchObject({ accessor: 'acc-1', kind: 'launcher', location: 'memory://x?v=1' });
    expect(out.text()).toContain(`  ${secret}\n`);
    expect(out.text()).toContain('bao token create -role=breakglass-admin');
  });

  it('prints to a pipe when forced', async () => {
    const out = terminal(false);
    await reveal({ sink: holding(credential), out, force: true, cli: 'vault' });
    expect(out.text()).toContain(secret);
  });

  it('says so when the sink is empty, and refuses a credential that does not match its fingerprint', async () => {
    await expect(reveal({ sink: holding(undefined), out: terminal(true), force: false, cli: 'bao' })).rejects.toThrow(/no break-glass credential/);
    await expect(reveal({ sink: holding({ ...credential, fingerprint: fingerprint('other') }), out: terminal(true), force: false, cli: 'bao' })).rejects.toThrow(/damaged/);
  });

  it('marks an expired credential', () => {
    expect(renderReveal({ ...credential, expiresAt: '2000-01-01T00:00:00.000Z' }, 'x', 'bao')).toContain('EXPIRED');
  });
});
