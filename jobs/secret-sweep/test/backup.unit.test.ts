import { expect, it } from 'vitest';
import { backupDoc, backupPaths, fromBackup, sameContent, toBackup } from '../src/backup.ts';

const secret = {
  metadata: { namespace: 'app', name: 'db', uid: 'u-1', resourceVersion: '42', labels: { a: 'b' }, annotations: { c: 'd' }, creationTimestamp: new Date() },
  type: 'kubernetes.io/basic-auth',
  immutable: true,
  data: { username: Buffer.from('u').toString('base64'), password: Buffer.from([0, 255, 10]).toString('base64') },
};

it('a backup keeps what restore needs and restore leaves server-set fields out', () => {
  const doc = toBackup(secret, new Date('2025-01-01T00:00:00Z'));
  expect(backupDoc.parse(JSON.parse(JSON.stringify(doc)))).toEqual(doc);
  const back = fromBackup(doc);
  expect(back).toEqual({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { namespace: 'app', name: 'db', labels: { a: 'b' }, annotations: { c: 'd' } },
    type: 'kubernetes.io/basic-auth',
    immutable: true,
    data: secret.data,
  });
});

it('sameContent ignores key order and the backup time, not a changed byte', () => {
  const a = toBackup(secret, new Date(1));
  const b = { ...toBackup(secret, new Date(2)), data: { password: secret.data.password, username: secret.data.username } };
  expect(sameContent(a, b)).toBe(true);
  expect(sameContent(a, { ...a, data: { ...a.data, username: Buffer.from('v').toString('base64') } })).toBe(false);
  expect(sameContent(a, { ...a, labels: {} })).toBe(false);
});

it('backup paths', () => {
  expect(backupPaths({ mount: 'secret', path: '/vk/backup/' }, 'app', 'db')).toEqual({
    api: 'secret/data/vk/backup/app/db',
    metadata: 'secret/metadata/vk/backup/app/db',
    logical: 'secret/vk/backup/app/db',
  });
});
