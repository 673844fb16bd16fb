import { S3Client } from '@aws-sdk/client-s3';
import { awsClientConfig, type AwsClientOptions } from './config.ts';

export function createS3Client(opts: AwsClientOptions): S3Client {
  return new S3Client(awsClientConfig(opts));
}
