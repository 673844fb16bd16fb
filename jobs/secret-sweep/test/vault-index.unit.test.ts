import { describe, expect, it } from 'vitest';
import { Fingerprinter } from '../src/fingerprint.ts';
import { VaultIndex } from '../src/vault-index.ts';

const b = (s: string) => Buffer.from(s, 'utf8');
const KEYSTORE = Buffer.from([0, 1, 2, 250, 251, 252, 253, 254, 255, 7]);

function index(): VaultIndex {
  const i = new VaultIndex(new Fingerprinter());
  i.addSecret('secret/apps/db', { username: 'app-user-1', password: 'pw-9f8e7d6c', port: 5432, nested: { token: 'tok-abcdef' } });
  i.addSecret('secret/apps/other', { pw: 'pw-9f8e7d6c' });
  i.addSecret('secret/apps/binary', { keystore: KEYSTORE.toString('base64') });
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
    const r = index().compare([{ key: 'keystore.p12', bytes: KEYSTORE }]);
    expect(r).toMatchObject({ status: 'migrated', path: 'secret/apps/binary' });
  });

  it('values spread over several paths are partly migrated, and say where each was seen', () => {
    const i = index();
    i.addSecret('secret/apps/x', { a: 'only-in-x-123' });
    const r = i.compare([
      { key: 'a', bytes: b('only-in-x-123') },
      { key: 'b', bytes: b('app-user-1') },
    ]);
    expect(r.status).toBe('partly-migrated');
    expect(r.path).toBeUndefined();
    expect(r.missingKeys).toEqual([]);
    expect(r.found.map((f) => `${f.key}@${f.path}`).sort()).toEqual(['a@secret/apps/x', 'b@secret/apps/db']);
  });

  it('short values, numbers and common literals are never evidence on their own', () => {
    const i = index();
    i.addSecret('secret/flags', { on: 'true' });
    i.addSecret('secret/pg', { port: '5432', host: 'localhost' });
    i.addSecret('secret/grafana', { user: 'admin' });
    // Spread over unrelated paths, or all together: unproven either way.
    expect(i.compare([{ key: 'enabled', bytes: b('true') }, { key: 'port', bytes: b('5432') }, { key: 'user', bytes: b('admin') }])).toMatchObject({
      status: 'unproven',
      weakKeys: ['enabled', 'port', 'user'],
    });
    expect(i.compare([{ key: 'port', bytes: b('5432') }, { key: 'host', bytes: b('localhost') }])).toMatchObject({ status: 'unproven', path: 'secret/pg' });
    // Weak values found nowhere: not in Vault.
    expect(i.compare([{ key: 'x', bytes: b('nope') }]).status).toBe('not-in-vault');
    // Beside a strong value at the same path, a weak one counts: migrated.
    expect(index().compare([{ key: 'PORT', bytes: b('5432') }, { key: 'password', bytes: b('pw-9f8e7d6c') }])).toMatchObject({ status: 'migrated', path: 'secret/apps/db', weakKeys: ['PORT'] });
    // A weak value elsewhere does not complete a strong one.
    expect(i.compare([{ key: 'user', bytes: b('admin') }, { key: 'token', bytes: b('tok-abcdef') }]).status).toBe('partly-migrated');
  });

  it('the minimum length and the common literals are configurable', () => {
    const i = new VaultIndex(new Fingerprinter(), { minValueLength: 4, commonValues: ['Shop-Prod'] });
    expect(i.isWeak(b('abc'))).toBe(true);
    expect(i.isWeak(b('abcd'))).toBe(false);
    expect(i.isWeak(b(' shop-prod '))).toBe(true);
    expect(i.isWeak(b('12345678901234'))).toBe(true);
    expect(i.isWeak(b('LocalHost'))).toBe(true);
    expect(new VaultIndex(new Fingerprinter()).isWeak(b('abcdefg'))).toBe(true);
  });

  it("a mapped Secret is compared with its mapped path only, and weak values there are evidence", () => {
    const i = index();
    i.addSecret('secret/apps/cfg', { host: 'localhost', port: '5432' });
    const values = [{ key: 'host', bytes: b('localhost') }, { key: 'port', bytes: b('5432') }];
    expect(i.compare(values, 'secret/apps/cfg')).toMatchObject({ status: 'migrated', path: 'secret/apps/cfg', evidence: 'mapping', mappedTo: 'secret/apps/cfg' });
    expect(i.compare(values, 'secret/apps/db')).toMatchObject({ status: 'partly-migrated', missingKeys: ['host'] });
    expect(i.compare([{ key: 'password', bytes: b('pw-9f8e7d6c') }], 'secret/elsewhere').status).toBe('not-in-vault');
  });

  it('two runs fingerprint the same value differently (the key is per run); text and its bytes alike', () => {
    expect(new Fingerprinter().of('same')).not.toBe(new Fingerprinter().of('same'));
    const fp = new Fingerprinter();
    expect(fp.of('päss-wörd')).toBe(fp.of(Buffer.from('päss-wörd', 'utf8')));
    expect(fp.of('a')).not.toBe(fp.of('b'));
  });
});
