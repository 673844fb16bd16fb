import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { DescribeKeyCommand, DisabledException, KMSClient, KMSInvalidStateException, KMSServiceException, LimitExceededException, NotFoundException } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyAwsError } from '../src/classify-aws-error.ts';

const meta = { httpStatusCode: 400 };

describe('classifyAwsError: the service said no', () => {
  it('keeps the key-unusable reasons apart', () => {
    expect(classifyAwsError(new DisabledException({ message: 'arn:aws:kms:... is disabled.', $metadata: meta }))).toMatchObject({ class: 'key-unusable', reason: 'disabled' });
    expect(
      classifyAwsError(new KMSInvalidStateException({ message: 'arn:aws:kms:us-east-1:1:key/abc is pending deletion.', $metadata: meta })),
    ).toMatchObject({ class: 'key-unusable', reason: 'pending deletion' });
    expect(classifyAwsError(new KMSInvalidStateException({ message: 'key/abc is pending import.', $metadata: meta }))).toMatchObject({
      class: 'key-unusable',
      reason: expect.stringMatching(/^pending import/),
    });
    expect(classifyAwsError(new NotFoundException({ message: 'Alias alias/x is not found.', $metadata: meta }))).toMatchObject({
      class: 'key-unusable',
      reason: expect.stringMatching(/^not found/),
    });
  });

  it('calls a refusal of the caller denied, whatever the service names it', () => {
    for (const name of ['AccessDeniedException', 'UnrecognizedClientException', 'InvalidSignatureException', 'ExpiredTokenException']) {
      const err = new KMSServiceException({ name, $fault: 'client', $metadata: meta, message: 'no' });
      expect(classifyAwsError(err).class, name).toBe('denied');
    }
    const noCreds = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    expect(classifyAwsError(noCreds)).toMatchObject({ class: 'denied', reason: expect.stringMatching(/no AWS credentials/) });
  });

  it('sees throttling by name and by status 429', () => {
    expect(classifyAwsError(new LimitExceededException({ message: 'rate', $metadata: meta })).class).toBe('throttled');
    const err = new KMSServiceException({ name: 'ThrottlingException', $fault: 'client', $metadata: { httpStatusCode: 400 }, message: 'Rate exceeded' });
    expect(classifyAwsError(err).class).toBe('throttled');
    const by429 = new KMSServiceException({ name: 'Whatever', $fault: 'client', $metadata: { httpStatusCode: 429 }, message: '' });
    expect(classifyAwsError(by429).class).toBe('throttled');
  });

  it('puts server errors and the unknown in other', () => {
    const err = new KMSServiceException({ name: 'KMSInternalException', $fault: 'server', $metadata: { httpStatusCode: 500 }, message: '' });
    expect(classifyAwsError(err)).toMatchObject({ class: 'other', reason: 'service error KMSInternalException' });
    expect(classifyAwsError('a string').class).toBe('other');
  });
});

describe('classifyAwsError: real sockets', () => {
  let closedPort: number;
  let hanging: Server;
  let hangingPort: number;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // A port that was just free: connect is refused.
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    closedPort = (probe.address() as { port: number }).port;
    probe.close();
    // Accepts and never answers: the endpoint that hangs.
    hanging = createServer((s) => sockets.push(s)).listen(0, '127.0.0.1');
    await once(hanging, 'listening');
    hangingPort = (hanging.address() as { port: number }).port;
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    hanging.close();
  });

  const client = (port: number) =>
    new KMSClient({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' },
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 500, requestTimeout: 500, throwOnRequestTimeout: true },
    });

  it('a closed port is unreachable: connection refused', async () => {
    const err = await client(closedPort).send(new DescribeKeyCommand({ KeyId: 'alias/x' })).catch((e: unknown) => e);
    expect(classifyAwsError(err)).toMatchObject({ class: 'unreachable', code: 'ECONNREFUSED', reason: 'connection refused' });
  });

  it('an endpoint that never answers is unreachable, by the handler timeout or by our own abort', async () => {
    const started = Date.now();
    const err = await client(hangingPort).send(new DescribeKeyCommand({ KeyId: 'alias/x' })).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(classifyAwsError(err)).toMatchObject({ class: 'unreachable', reason: 'no answer in time' });

    const aborted = await client(hangingPort)
      .send(new DescribeKeyCommand({ KeyId: 'alias/x' }), { abortSignal: AbortSignal.timeout(100) })
      .catch((e: unknown) => e);
    expect(classifyAwsError(aborted).class).toBe('unreachable');
  });
});
