import { ApiException } from '@kubernetes/client-node';
import { expect, it } from 'vitest';
import { isRetryableKube, KubeError, KubeUnreachableError, toKubeError } from '../src/kube.ts';

it('keeps status, reason and message of a Status, and never the body', () => {
  const planted = 'planted-value-3c1d9e';
  const body = JSON.stringify({ kind: 'Status', reason: 'Conflict', code: 409, message: 'Precondition failed: UID in precondition: a, UID in object meta: b', details: { data: planted } });
  const err = toKubeError('delete secret app/db', new ApiException(409, 'Unknown API Status Code!', body, { 'x-secret': planted }));
  expect(err).toBeInstanceOf(KubeError);
  expect(err).toMatchObject({ status: 409, reason: 'Conflict' });
  expect(err.message).toContain('Precondition failed');
  expect(JSON.stringify({ ...err, message: err.message })).not.toContain(planted);
});

it('a non-Status body (a Secret, say) contributes nothing', () => {
  const planted = 'planted-value-77aa';
  const body = JSON.stringify({ kind: 'Secret', data: { k: Buffer.from(planted).toString('base64') }, stringData: { k: planted } });
  const err = toKubeError('read secret', new ApiException(500, 'x', body, {}));
  expect(err.message).toBe('Kubernetes read secret answered 500');
  expect(isRetryableKube(err)).toBe(true);
});

it('connection failures become KubeUnreachableError and are retryable; 4xx are not', () => {
  const err = toKubeError('list pods', Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }));
  expect(err).toBeInstanceOf(KubeUnreachableError);
  expect(err.message).toBe('Kubernetes list pods: ECONNREFUSED');
  expect(isRetryableKube(err)).toBe(true);
  expect(isRetryableKube(new KubeError('x', 403, 'Forbidden', undefined))).toBe(false);
  expect(isRetryableKube(new KubeError('x', 429, 'TooManyRequests', undefined))).toBe(true);
});
