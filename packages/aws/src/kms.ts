import { KMSClient } from '@aws-sdk/client-kms';
import { awsClientConfig, type AwsClientOptions } from './config.ts';

/** forcePathStyle is S3's alone and left out. */
export function createKmsClient(opts: AwsClientOptions): KMSClient {
  return new KMSClient(awsClientConfig({ ...opts, forcePathStyle: undefined }));
}
