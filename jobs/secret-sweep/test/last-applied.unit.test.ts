import { expect, it } from 'vitest';
import { LAST_APPLIED, lastAppliedCopy } from '../src/last-applied.ts';

it('finds data and plaintext stringData in the last-applied annotation', () => {
  const applied = { apiVersion: 'v1', kind: 'Secret', data: { a: Buffer.from('from-data').toString('base64'), empty: '' }, stringData: { b: 'plain-text' } };
  const copy = lastAppliedCopy({ [LAST_APPLIED]: JSON.stringify(applied) });
  expect(copy).not.toBe('unparseable');
  if (!copy || copy === 'unparseable') throw new Error('no copy');
  expect(copy.dataKeys).toEqual(['a']);
  expect(copy.stringDataKeys).toEqual(['b']);
  expect(copy.values.map((v) => v.bytes.toString())).toEqual(['from-data', 'plain-text']);
});

it('no annotation, no data, only empty values, or garbage', () => {
  expect(lastAppliedCopy(undefined)).toBeUndefined();
  expect(lastAppliedCopy({ [LAST_APPLIED]: JSON.stringify({ kind: 'Secret', metadata: { name: 'x' } }) })).toBeUndefined();
  expect(lastAppliedCopy({ [LAST_APPLIED]: JSON.stringify({ data: { a: '' } }) })).toBeUndefined();
  expect(lastAppliedCopy({ [LAST_APPLIED]: '{not json' })).toBe('unparseable');
});
