// Debian's Prometheus server over the Pushgateway, with docs/prometheus-rules.yaml loaded (issue 13 §4).
// Placeholder until it is started here: returns null, and the stack runs without it.
import type { StackInfo } from './stack.ts';

export async function startPrometheus(_stack: StackInfo): Promise<StackInfo['prometheus']> {
  return null;
}

/** What is wrong with a running Prometheus; empty when it is ready. */
export async function prometheusProblems(_info: NonNullable<StackInfo['prometheus']>): Promise<string[]> {
  return [];
}
