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

describe('describeError: nested values (review 10)', () => {
  class ApiException extends Error {
    constructor(readonly code: number, readonly body: unknown, readonly headers: Record<string, string>) {
      super(`HTTP-Code: ${code}\nMessage: x\nBody: ${JSON.stringify(body)}`);
    }
  }

  it('describes the errors of an AggregateError one by one (an ApiException inside keeps its body and headers out)', async () => {
    const { describeError } = await import('../src/index.ts');
    const inner = new ApiException(409, { data: { password: 'cGxhbnRlZC1hZ2c=' } }, { authorization: 'Bearer planted-agg-header' });
    const d = describeError(new AggregateError([inner, 'plain text'], 'two things failed'));
    expect(JSON.stringify(d)).not.toMatch(/cGxhbnRlZC1hZ2c=|planted-agg-header/);
    expect(d.errors).toEqual([{ type: 'ApiException', message: 'HTTP-Code: 409', code: 409 }, 'plain text']);
  });

  it('keeps an Error or a secret-named field inside details or issues out of the line', async () => {
    const { describeError, JobFailure } = await import('../src/index.ts');
    const inner = new ApiException(500, { data: { token: 'planted-details-body' } }, {});
    const d = describeError(
      new JobFailure('failed', { step: 'x', attempt: { last: inner, request: { headers: { 'X-Vault-Token': 'planted-details-hdr' } }, deep: { a: { token: 'planted-deep-token' } } } }),
    );
    const text = JSON.stringify(d);
    expect(text).not.toMatch(/planted-details-body|planted-details-hdr|planted-deep-token/);
    expect((d.details as { attempt: { last: unknown } }).attempt.last).toEqual({ type: 'ApiException', message: 'HTTP-Code: 500', code: 500 });
    const at = new Date('2026-01-02T03:04:05.000Z');
    expect(describeError(new JobFailure('late', { expiresAt: at, buf: Buffer.from('planted-buf') })).details).toEqual({ expiresAt: '2026-01-02T03:04:05.000Z', buf: '[Buffer]' });
    const withIssues = describeError(Object.assign(new Error('bad'), { issues: [{ path: ['a'], message: 'x', input: { password: 'planted-issue-pw' } }] }));
    expect(JSON.stringify(withIssues)).not.toContain('planted-issue-pw');
  });

  it('survives a cyclic cause and stops a long cause chain at a fixed depth', async () => {
    const { describeError } = await import('../src/index.ts');
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(() => describeError(a)).not.toThrow();
    let chain: Error = new Error('e0');
    for (let i = 1; i < 50; i++) chain = new Error(`e${i}`, { cause: chain });
    const d = describeError(chain);
    let depth = 0;
    for (let c: Record<string, unknown> | undefined = d; c; c = c.cause as Record<string, unknown> | undefined) depth++;
    expect(depth).toBeLessThanOrEqual(6);
    expect(JSON.stringify(d)).toContain('cause chain cut');
  });
});
