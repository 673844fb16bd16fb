// Which S3 server the S3-facing suites run against: moto (default) or versitygw (issue 13 §2),
// chosen by VAULTKEEPER_S3. KMS is always moto's.
import type { StackInfo } from './stack.ts';

/** The S3 part of a job's environment against the stack. */
export function s3Env(stack: StackInfo): Record<string, string> {
  return { AWS_ENDPOINT_URL: stack.aws.endpoint };
}
