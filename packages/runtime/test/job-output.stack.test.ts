// What a real job process prints when it fails, checked on all of stdout and stderr: every line
// is JSON from the redacting logger, an error keeps its cause, an unhandled rejection or exception
// ends the run through the logger with exit 1 (cleanup included), a Pushgateway URL's credentials
// never appear, and nothing planted leaks. The fixture job logs in to the stack's real Vault.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, request } from 'node:http';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test/stack/layout.ts';
import { readStack } from '../../../test/stack/stack.ts';
import { findPlantedSecrets, runJobProcess, type JobRun } from '../../../test/support/run-job.ts';

const entry = resolve(REPO_ROOT, 'packages/runtime/test/fixtures/output-job.ts');
const planted = `planted-${randomBytes(12).toString('hex')}`;
const run = (args: string[], env: Record<string, string | undefined> = {}) =>
  runJobProcess({ job: 'output-job', entry, identity: 'kms-probe', args: [...args, '--planted', planted], env: { PUSHGATEWAY_URL: undefined, ...env }, timeoutMs: 60_000 });

/** Every line on stdout is a JSON object, stderr is empty, and the planted value is nowhere. */
function expectCleanOutput(r: JobRun): void {
  const notJson = r.stdout.split('\n').filter((l) => l !== '' && !isJsonObject(l));
  expect(notJson, 'stdout lines that are not JSON').toEqual([]);
  expect(r.stderr, 'stderr').toBe('');
  expect(findPlantedSecrets(r.all, { planted })).toEqual([]);
  expect(r.all).not.toContain('[object Object]');
}
const isJsonObject = (line: string) => {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null;
  } catch {
    return false;
  }
};
const errorLines = (r: JobRun) => r.lines.filter((l) => l.level === 'error');

describe('what a failing job prints', () => {
  it("keeps the cause of a JobFailure in its log line (a 403 from Vault, with method, path and status)", async () => {
    const r = await run(['--fail', 'denied-with-cause']);
    expect(r.code, r.all).toBe(1);
    expectCleanOutput(r);
    const line = r.lines.find((l) => l.msg === 'could not read the test path; nothing was changed');
    expect(line, r.stdout).toBeDefined();
    expect(line!.step).toBe('read');
    expect(line!.err).toMatchObject({
      type: 'JobFailure',
      message: 'could not read the test path; nothing was changed',
      cause: { type: 'VaultError', status: 403, path: 'secret/data/output-job/not-for-this-role' },
    });
    expect((r.summary!.error as Record<string, unknown>).cause).toMatchObject({ type: 'VaultError', status: 403 });
  });

  for (const how of ['unhandled-rejection', 'uncaught-exception'] as const) {
    it(`ends the run on an ${how.replace('-', ' ')} through the logger: exit 1, token revoked, no raw error`, async () => {
      const r = await run(['--fail', how]);
      expect(r.code, r.all).toBe(1);
      expectCleanOutput(r);
      // The error ended the fixture's 30 s of work (its abortable sleep threw), not the sleep's end:
      // the run's end is the abort's line, and the value run() returns after the sleep is nowhere.
      expect(r.lines.some((l) => l.msg === 'run ended'), r.stdout).toBe(true);
      expect(r.summary).not.toHaveProperty('unexpected');
      const unhandled = errorLines(r).find((l) => String(l.msg).startsWith('unhandled error'));
      expect(unhandled, r.stdout).toBeDefined();
      expect(unhandled!.err).toMatchObject(how === 'unhandled-rejection' ? { type: 'ApiException', code: 422, message: 'HTTP-Code: 422' } : { type: 'Error', message: 'Request failed with status code 500' });
      expect(r.lines.some((l) => l.msg === 'login token revoked'), r.stdout).toBe(true);
      expect(r.summary).toMatchObject({ outcome: 'failure' });
    });
  }
});

describe('a Pushgateway URL with credentials', () => {
  const user = 'vk-push';
  const group = `${readStack().pushgateway.url}/metrics/job/vaultkeeper_output_job`;
  afterAll(async () => {
    await fetch(group, { method: 'DELETE' });
  });

  it('pushes with them (basic auth) and never prints them', async () => {
    // A forwarder in front of the real Pushgateway (which checks no credentials) notes the
    // Authorization header each push carries.
    const gateway = new URL(readStack().pushgateway.url);
    const seen: Array<string | undefined> = [];
    const forwarder = createHttpServer((req, res) => {
      seen.push(req.headers.authorization);
      const upstream = request({ host: gateway.hostname, port: gateway.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    }).listen(0, '127.0.0.1');
    await once(forwarder, 'listening');
    const host = `127.0.0.1:${(forwarder.address() as { port: number }).port}`;
    try {
      const r = await run([], { PUSHGATEWAY_URL: `http://${user}:${planted}@${host}`, LOG_LEVEL: 'debug' });
      expect(r.code, r.all).toBe(0);
      expectCleanOutput(r);
      expect(r.lines.find((l) => l.msg === 'metrics pushed'), r.stdout).toMatchObject({ pushgateway: `http://${host}` });
      expect(seen).toEqual([`Basic ${Buffer.from(`${user}:${planted}`).toString('base64')}`]);
      const text = await (await fetch(`${readStack().pushgateway.url}/metrics`)).text();
      expect(text).toMatch(/^vaultkeeper_output_job_last_success_timestamp_seconds\{.*job="vaultkeeper_output_job".*\} /m);
    } finally {
      await new Promise((r) => forwarder.close(r));
    }
  });

  it('an unhandled error during the push: the pushed outcome is failure, as the exit code says', async () => {
    const r = await run(['--fail', 'unhandled-during-push'], { PUSHGATEWAY_URL: readStack().pushgateway.url, LOG_LEVEL: 'debug' });
    expect(r.code, r.all).toBe(1);
    expectCleanOutput(r);
    expect(r.summary).toMatchObject({ outcome: 'failure' });
    const text = await (await fetch(`${readStack().pushgateway.url}/metrics`)).text();
    const outcome = (o: string) => text.match(new RegExp(`^vaultkeeper_output_job_last_run_outcome\\{[^}]*job="vaultkeeper_output_job"[^}]*outcome="${o}"[^}]*\\} (\\S+)$`, 'm'))?.[1];
    expect({ failure: outcome('failure'), success: outcome('success') }).toEqual({ failure: '1', success: '0' });
  });

  it('a URL without credentials is shown as it is', async () => {
    const r = await run([], { PUSHGATEWAY_URL: readStack().pushgateway.url, LOG_LEVEL: 'debug' });
    expect(r.code, r.all).toBe(0);
    expectCleanOutput(r);
    expect(r.lines.find((l) => l.msg === 'metrics pushed'), r.stdout).toMatchObject({ pushgateway: readStack().pushgateway.url });
  });

  it('keeps them out of the warning when the push fails', async () => {
    const srv = createServer().listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    const r = await run([], { PUSHGATEWAY_URL: `http://${user}:${planted}@127.0.0.1:${port}`, PUSHGATEWAY_TIMEOUT: '2s' });
    expect(r.code, r.all).toBe(0);
    expectCleanOutput(r);
    const warning = r.lines.find((l) => l.msg === 'could not push metrics to the Pushgateway');
    expect(warning, r.stdout).toMatchObject({ level: 'warn', pushgateway: `http://127.0.0.1:${port}` });
  });
});
