// versitygw (Apache-2.0): the stack's second, stricter S3 server, beside moto (issue 13 §2).
// Placeholder until it is built and started here: returns null, and the stack runs without it.
import type { StackInfo } from './stack.ts';

export async function startVersitygw(_stack: StackInfo): Promise<StackInfo['versitygw']> {
  return null;
}

/** What is wrong with a running versitygw; empty when it answers. */
export async function versitygwProblems(_info: NonNullable<StackInfo['versitygw']>): Promise<string[]> {
  return [];
}
