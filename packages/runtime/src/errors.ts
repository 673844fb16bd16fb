/** Exit codes every job shares (batch-job convention: 0 done, 1 failed, 2 bad config or usage). */
export const ExitCode = { ok: 0, failed: 1, usage: 2 } as const;

/** One problem with one config field: `field` is the dotted path, `source` says where the value came from. */
export interface ConfigIssue {
  field: string;
  source?: string;
  reason: string;
}

/** Bad configuration: exits 2 and names every bad field with the reason. Never carries a value. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly issues: ConfigIssue[]) {
    super(
      'invalid configuration:\n' +
        issues.map((i) => `  - ${i.field}${i.source ? ` (from ${i.source})` : ''}: ${i.reason}`).join('\n'),
    );
  }
}

/** Bad command line: exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure the job wants reported as such (exit 1) with a message meant for the operator. */
export class JobFailure extends Error {
  override readonly name = 'JobFailure';
  constructor(
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The run was stopped by SIGTERM/SIGINT or its deadline. */
export class AbortedError extends Error {
  override readonly name = 'AbortedError';
  constructor(reason = 'aborted') {
    super(reason);
  }
}

export function isAbortError(err: unknown): boolean {
  return (
    err instanceof AbortedError ||
    (err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR'))
  );
}
