import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, registerSecret } from '../src/index.ts';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c) => (text += c));
  return { stream, text: () => text };
}

describe('logger', () => {
  it('redacts secret-bearing fields at any depth it knows', () => {
    const out = capture();
    const log = createLogger({ job: 't', level: 'info', destination: out.stream });
    log.info({ token: 'hvs.AAAA1111', auth: { client_token: 'hvs.BBBB2222' }, provider: { client_secret: 'cs-CCCC3333' } }, 'x');
    expect(out.text()).not.toMatch(/AAAA1111|BBBB2222|CCCC3333/);
    expect(out.text()).toContain('[redacted]');
  });

  it('scrubs registered secret values wherever they appear, messages included', () => {
    const out = capture();
    const log = createLogger({ job: 't', level: 'info', destination: out.stream });
    registerSecret('planted-secret-9f8e7d');
    log.error({ err: new Error('server said planted-secret-9f8e7d is wrong') }, 'failed with planted-secret-9f8e7d');
    expect(out.text()).not.toContain('planted-secret-9f8e7d');
  });

  it('logs only the safe parts of an error', () => {
    const out = capture();
    const log = createLogger({ job: 't', level: 'info', destination: out.stream });
    const err = Object.assign(new Error('boom'), { status: 500, config: { headers: { 'X-Vault-Token': 'hvs.DDDD4444' } } });
    log.error({ err }, 'failed');
    const line = JSON.parse(out.text()) as { err: Record<string, unknown> };
    expect(line.err).toEqual({ type: 'Error', message: 'boom', status: 500 });
  });
});

describe('describeError', () => {
  it('keeps a described cause (a JobFailure with details.err) instead of printing [object Object]', async () => {
    const { JobFailure, describeError } = await import('../src/index.ts');
    const cause = describeError(Object.assign(new Error('Vault GET /v1/x answered 403'), { name: 'VaultError', status: 403, path: 'x' }));
    const d = describeError(new JobFailure('could not create', { err: cause, step: 'create' }));
    expect(d).toEqual({ type: 'JobFailure', message: 'could not create', details: { step: 'create' }, cause: { type: 'VaultError', message: 'Vault GET /v1/x answered 403', status: 403, path: 'x' } });
    expect(describeError({ some: 'object' })).toEqual({ message: 'a non-Error value was thrown (object)' });
  });

  it('logs only the first line of an error that carries a response (ApiException writes the body after it)', async () => {
    const { describeError } = await import('../src/index.ts');
    class ApiException extends Error {
      constructor(readonly code: number, readonly body: unknown) {
        super(`HTTP-Code: ${code}\nMessage: x\nBody: ${JSON.stringify(body)}`);
      }
    }
    expect(describeError(new ApiException(409, { data: { password: 'cGxhbnRlZA==' } }))).toEqual({ type: 'ApiException', message: 'HTTP-Code: 409', code: 409 });
  });
});
