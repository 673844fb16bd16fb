import { describe, expect, it } from 'vitest';
import { Fingerprinter } from '../src/fingerprint.ts';
import { VaultIndex } from '../src/vault-index.ts';

const b = (s: string) => Buffer.from(s, 'utf8');

function index(): VaultIndex {
  const i = new VaultIndex(new Fingerprinter());
  i.addSecret('secret/apps/db', { username: 'app-user-1', password: 'pw-9f8e7d6c', port: 5432, nested: { token: 'tok-abcdef' } });
  i.addSecret('secret/apps/other', { pw: 'pw-9f8e7d6c' });
  i.addSecret('secret/apps/binary', { keystore: Buffer.from([0, 1, 2, 250, 251]).toString('base64') });
  return i;
}

describe('VaultIndex.compare', () => {
  it('migrated: every value in one path (keys may be renamed); numbers and nested values count', () => {
    const r = index().compare([
      { key: 'DB_USER', bytes: b('app-user-1') },
      { key: 'password', bytes: b('pw-9f8e7d6c') },
      { key: 'PORT', bytes: b('5432') },
      { key: 'token', bytes: b('tok-abcdef') },
    ]);
    expect(r.status).toBe('migrated');
    expect(r.path).toBe('secret/apps/db');
    expect(r.missingKeys).toEqual([]);
    // The same-name field wins inside the best path.
    expect(r.found.find((f) => f.key === 'password')).toEqual({ key: 'password', path: 'secret/apps/db', field: 'password' });
    expect(r.found.find((f) => f.key === 'token')?.field).toBe('nested.token');
  });

  it('partly migrated names the missing keys', () => {
    const r = index().compare([
      { key: 'username', bytes: b('app-user-1') },
      { key: 'api-key', bytes: b('not-in-vault-xyz') },
    ]);
    expect(r).toMatchObject({ status: 'partly-migrated', missingKeys: ['api-key'] });
    expect(r.path).toBeUndefined();
  });

  it('not in Vault, and empty', () => {
    expect(index().compare([{ key: 'k', bytes: b('nope-nope') }]).status).toBe('not-in-vault');
    expect(index().compare([{ key: 'k', bytes: b('') }])).toMatchObject({ status: 'empty', emptyKeys: ['k'] });
    expect(index().compare([]).status).toBe('empty');
  });

  it('a binary value stored base64-encoded in Vault counts as migrated', () => {
    const r = index().compare([{ key: 'keystore.p12', bytes: Buffer.from([0, 1, 2, 250, 251]) }]);
    expect(r).toMatchObject({ status: 'migrated', path: 'secret/apps/binary' });
  });

  it('values spread over several paths are migrated without a single path', () => {
    const i = index();
    i.addSecret('secret/apps/x', { a: 'only-in-x-123' });
    const r = i.compare([
      { key: 'a', bytes: b('only-in-x-123') },
      { key: 'b', bytes: b('app-user-1') },
    ]);
    expect(r.status).toBe('migrated');
    expect(r.path).toBeUndefined();
    expect(r.found.map((f) => f.path).sort()).toEqual(['secret/apps/db', 'secret/apps/x']);
  });

  it('two runs fingerprint the same value differently (the key is per run); text and its bytes alike', () => {
    expect(new Fingerprinter().of('same')).not.toBe(new Fingerprinter().of('same'));
    const fp = new Fingerprinter();
    expect(fp.of('päss-wörd')).toBe(fp.of(Buffer.from('päss-wörd', 'utf8')));
    expect(fp.of('a')).not.toBe(fp.of('b'));
  });
});
