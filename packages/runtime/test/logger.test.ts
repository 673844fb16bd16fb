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
