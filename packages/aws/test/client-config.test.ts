import { describe, expect, it } from 'vitest';
import { scrubSecrets } from '@vaultkeeper/runtime';
import { awsClientConfig, createKmsClient, createS3Client, registerAwsCredentials } from '../src/index.ts';

describe('awsClientConfig', () => {
  it('leaves out what is not given, so the SDK resolves it its own way', () => {
    expect(awsClientConfig({})).toEqual({});
    expect(awsClientConfig({ region: '', endpoint: '' })).toEqual({});
    expect(awsClientConfig({ forcePathStyle: false })).toEqual({ forcePathStyle: false });
  });

  it('sets both handler timeouts in ms and throws on a request timeout by default', () => {
    expect(awsClientConfig({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:5000', connectTimeoutSeconds: 2.5, requestTimeoutSeconds: 2.5, maxAttempts: 2 })).toEqual({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:5000',
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 2500, requestTimeout: 2500, throwOnRequestTimeout: true },
    });
  });

  it('sets an idle limit instead of a total one, and passes static credentials', () => {
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-example-key' };
    expect(awsClientConfig({ connectTimeoutSeconds: 5, idleTimeoutSeconds: 30, credentials })).toEqual({
      credentials,
      requestHandler: { connectionTimeout: 5000, socketTimeout: 30000 },
    });
  });
});

describe('clients', () => {
  it('builds S3 and KMS clients with the given settings', async () => {
    const opts = { region: 'eu-central-1', endpoint: 'http://127.0.0.1:1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-example-key' } };
    const s3 = createS3Client(opts);
    const kms = createKmsClient(opts);
    try {
      expect(await s3.config.region()).toBe('eu-central-1');
      expect(s3.config.forcePathStyle).toBe(true);
      expect(await kms.config.region()).toBe('eu-central-1');
      expect((await kms.config.credentials()).accessKeyId).toBe('AKIDEXAMPLE');
      expect(await kms.config.maxAttempts()).toBe(1);
    } finally {
      s3.destroy();
      kms.destroy();
    }
  });
});

describe('registerAwsCredentials', () => {
  it('hides the secret parts of the resolved credentials from the logs', async () => {
    const kms = createKmsClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'aws-secret-unit-test-1', sessionToken: 'aws-session-unit-test-1' } });
    try {
      await registerAwsCredentials(kms, 1);
      expect(scrubSecrets('aws-secret-unit-test-1 aws-session-unit-test-1 AKIDEXAMPLE')).not.toMatch(/aws-(secret|session)-unit-test-1/);
    } finally {
      kms.destroy();
    }
  });

  it('gives up quietly when the credentials do not resolve in time', async () => {
    const hung = { config: { credentials: () => new Promise<never>(() => {}) } };
    const started = Date.now();
    await expect(registerAwsCredentials(hung, 0.05)).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
