import { z } from 'zod';
import { commonConfig, loadConfig, mergeSpecs, type ConfigSpec } from './config.ts';
import { parseCommandLine, renderHelp, type OptionSpec } from './cli.ts';
import { AbortedError, ConfigError, ExitCode, JobFailure, UsageError, isAbortError } from './errors.ts';
import { CAUSE_KEYS, createLogger, describeError, withoutKeys, type Logger } from './logger.ts';
import { JobMetrics, type Outcome } from './metrics.ts';
import { pushgatewayDestination } from './pushgateway.ts';
import { scrubSecrets } from './secrets.ts';
import { routeUnhandledErrors, type UnhandledOrigin } from './unhandled-errors.ts';

export interface JobResult {
  outcome?: Outcome;
  /**
   * false for a read-only command (list, verify) whose run must not count as the job's run: its
   * outcome, duration and last-success metrics are then not recorded (job-specific gauges still are).
   */
  recordRun?: boolean;
  [field: string]: unknown;
}

type CommonShape = (typeof commonConfig)['shape'];
type CommonConfig = z.infer<z.ZodObject<CommonShape>>;

export interface JobContext<Shape extends z.ZodRawShape> {
  job: string;
  config: z.infer<z.ZodObject<Shape & CommonShape>>;
  log: Logger;
  /** Aborted on SIGTERM/SIGINT: pass it to every call that can wait. */
  signal: AbortSignal;
  dryRun: boolean;
  command: string;
  positionals: string[];
  options: Record<string, string | boolean | undefined>;
  metrics: JobMetrics;
  /** Runs at the end, in reverse order of registration, on success, failure and SIGTERM alike. */
  onCleanup(fn: () => Promise<void> | void): void;
}

export interface JobDefinition<Shape extends z.ZodRawShape> {
  /** kebab-case, e.g. `raft-snapshot`; names the metrics and the log lines. */
  name: string;
  title: string;
  description: string;
  /** Command name → one-line doc; the first is the default. */
  commands?: Record<string, string>;
  options?: Record<string, OptionSpec>;
  config: ConfigSpec<Shape>;
  run(ctx: JobContext<Shape>): Promise<JobResult>;
}

export interface RunJobOptions {
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Where log lines and help go; defaults to stdout. */
  stdout?: NodeJS.WritableStream;
}

/**
 * The one way a job runs: parse the command line, load and check config, run with a signal that
 * SIGTERM aborts, clean up (always), push metrics, print one summary line, set the exit code.
 * Returns the exit code; never calls process.exit while work is in flight.
 */
export async function runJob<Shape extends z.ZodRawShape>(def: JobDefinition<Shape>, opts: RunJobOptions = {}): Promise<number> {
  const argv = opts.argv ?? process.argv.slice(2);
  const env = opts.env ?? process.env;
  const out = opts.stdout ?? process.stdout;
  const commands = def.commands ?? {};
  const options = def.options ?? {};
  const spec = mergeSpecs(commonConfig, def.config);
  const started = Date.now();

  let cli;
  try {
    cli = parseCommandLine(argv, commands, options);
  } catch (err) {
    return usageFailure(out, def.name, err);
  }
  if (cli.options.help) {
    out.write(renderHelp({ ...def, commands, options, env: spec.env }));
    return setExit(ExitCode.ok);
  }

  let config: CommonConfig;
  try {
    config = loadConfig(spec, { env, file: (cli.options.config as string | undefined) ?? env.VAULTKEEPER_CONFIG }) as CommonConfig;
  } catch (err) {
    return usageFailure(out, def.name, err);
  }

  const log = createLogger({ job: def.name, level: config.logLevel, destination: out });
  const metrics = new JobMetrics(def.name);
  const pushgateway = config.metrics.pushgatewayUrl ? pushgatewayDestination(config.metrics.pushgatewayUrl, metrics.groupName) : undefined;
  const controller = new AbortController();
  const cleanups: Array<() => Promise<void> | void> = [];
  const graceMs = config.shutdownGraceSeconds * 1000;
  const dryRun = Boolean(cli.options['dry-run']);

  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      log.error({ signal }, 'second signal: exiting now without cleanup');
      process.exit(ExitCode.failed);
    }
    log.warn({ signal, graceSeconds: config.shutdownGraceSeconds }, 'stopping: aborting in-flight work and cleaning up');
    controller.abort(new AbortedError(`stopped by ${signal}`));
    // If cleanup hangs, the pod would be SIGKILLed at the end of its grace period anyway;
    // leaving first lets us say so.
    setTimeout(() => {
      log.error({ signal }, 'cleanup did not finish inside the grace period; exiting');
      process.exit(ExitCode.failed);
    }, graceMs).unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  // An unhandled rejection or exception fails the run the way SIGTERM stops it: in-flight work
  // is aborted and cleanup (the login token's revocation) still runs, inside the grace period.
  let unhandled: { err: unknown } | undefined;
  let finished = false;
  const onUnhandled = (err: unknown, origin: UnhandledOrigin) => {
    log.error({ err, origin }, `unhandled error (${origin}): ${finished ? 'after the run' : 'ending the run as failed'}`);
    setExit(ExitCode.failed);
    if (finished || unhandled) return;
    unhandled = { err };
    controller.abort(new AbortedError(`ended by an unhandled error (${origin})`));
    setTimeout(() => {
      log.error({ origin }, 'cleanup did not finish inside the grace period; exiting');
      process.exit(ExitCode.failed);
    }, graceMs).unref();
  };
  routeUnhandledErrors(onUnhandled);

  let result: JobResult = {};
  let outcome: Outcome;
  let error: Record<string, unknown> | undefined;
  let usage = false;
  try {
    log.info({ command: cli.command, dryRun }, 'starting');
    result = await def.run({
      job: def.name,
      config: config as unknown as JobContext<Shape>['config'],
      log,
      signal: controller.signal,
      dryRun,
      command: cli.command,
      positionals: cli.positionals,
      options: cli.options,
      metrics,
      onCleanup: (fn) => cleanups.push(fn),
    });
    outcome = result.outcome ?? 'success';
  } catch (err) {
    outcome = 'failure';
    // A bad argument noticed by the job itself (a command's own operand) is still usage: exit 2.
    if (err instanceof UsageError || err instanceof ConfigError) usage = true;
    error = describeError(controller.signal.aborted && isAbortError(err) ? controller.signal.reason : err);
    // The details are the line's fields; the error they carry is the cause of `err`, never its replacement.
    if (err instanceof JobFailure) log.error({ ...withoutKeys(err.details, CAUSE_KEYS), err }, err.message);
    else if (unhandled && controller.signal.aborted) log.error({ err: controller.signal.reason }, 'run ended');
    else if (controller.signal.aborted) log.error({ err: controller.signal.reason }, 'run aborted');
    else log.error({ err }, 'run failed');
  }

  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (err) {
      log.error({ err }, 'cleanup step failed');
      outcome = 'failure';
    }
  }

  // An unhandled error anywhere in the run or its cleanup fails it, whatever run() returned.
  const failIfUnhandled = () => {
    if (!unhandled) return;
    outcome = 'failure';
    error = describeError(unhandled.err);
  };
  failIfUnhandled();
  const durationSeconds = (Date.now() - started) / 1000;
  if (!dryRun) {
    if (result.recordRun !== false) metrics.recordRun(outcome, durationSeconds);
    else metrics.forgetRun();
    const unhandledBeforePush = unhandled;
    await metrics.push(pushgateway, config.metrics.pushTimeoutSeconds, log);
    // An unhandled error while the push was under way fails the run (exit 1) after the push said
    // its outcome: push again so the metrics agree with the exit code. last_success keeps the
    // value the first push carried (the run's work did finish); docs/operations.md says so.
    if (unhandled && !unhandledBeforePush && result.recordRun !== false) {
      failIfUnhandled();
      metrics.recordRun(outcome, durationSeconds);
      await metrics.push(pushgateway, config.metrics.pushTimeoutSeconds, log);
    }
  }
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  failIfUnhandled();
  finished = true;

  const { outcome: _ignored, recordRun: _notShown, ...fields } = result;
  log.info({ summary: { job: def.name, command: cli.command, outcome, dryRun, durationSeconds, ...fields, ...(error ? { error } : {}) } }, 'finished');
  return setExit(usage ? ExitCode.usage : outcome === 'failure' ? ExitCode.failed : ExitCode.ok);
}

function usageFailure(out: NodeJS.WritableStream, job: string, err: unknown): number {
  if (err instanceof ConfigError || err instanceof UsageError) {
    // Before the logger exists (config decides its level), so one JSON line by hand.
    const line = {
      level: 'error',
      time: new Date().toISOString(),
      job,
      msg: err instanceof ConfigError ? 'invalid configuration' : 'invalid usage',
      error: scrubSecrets(err.message),
      ...(err instanceof ConfigError ? { issues: err.issues } : {}),
      hint: 'run with --help for the options and environment variables',
    };
    out.write(JSON.stringify(line) + '\n');
    return setExit(ExitCode.usage);
  }
  throw err;
}

function setExit(code: number): number {
  process.exitCode = code;
  return code;
}
