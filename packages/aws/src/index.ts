/**
 * The AWS SDK v3 clients every job builds, one way: region and endpoint only when given (else the
 * SDK's own resolution: AWS_REGION, AWS_ENDPOINT_URL, IRSA or the default provider chain), the
 * handler's connect and request timeouts, the attempt count, and static credentials when a job
 * has its own (e.g. read from Vault). What a job needs beyond that (per-call abort signals, where
 * its credentials come from) stays in the job.
 *
 * One module per SDK, and "sideEffects": false in package.json, so that a bundle carries only the
 * SDKs a job uses. A job that loads S3 lazily (kms-probe) imports '@vaultkeeper/aws/s3' in the lazy
 * module: esbuild would otherwise initialise this index, and with it the S3 SDK, at start-up.
 */
export { awsClientConfig, registerAwsCredentials, type AwsClientOptions, type AwsCredentials, type ClientWithCredentials } from './config.ts';
export { createKmsClient } from './kms.ts';
export { createS3Client } from './s3.ts';
