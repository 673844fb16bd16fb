export { commonConfig, defineConfig, field, loadConfig, mergeSpecs, type ConfigOf, type ConfigSpec, type EnvBinding, type EnvMap } from './config.ts';
export { COMMON_OPTIONS, parseCommandLine, renderHelp, type OptionSpec } from './cli.ts';
export { AbortedError, ConfigError, ExitCode, JobFailure, UsageError, isAbortError, type ConfigIssue } from './errors.ts';
export { runJob, type JobContext, type JobDefinition, type JobResult, type RunJobOptions } from './job.ts';
export { createLogger, describeError, REDACTED_PATHS, type Logger } from './logger.ts';
export { JobMetrics, type Outcome } from './metrics.ts';
export { withRetry, type RetryOptions } from './retry.ts';
export { registerSecret, scrubSecrets } from './secrets.ts';
export { z } from 'zod';
