// Detached server processes: start one in its own process group with its output in a log
// file, remember it in $STATE/pids/<name>.json, and stop it again by process group.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { STATE_DIR, logFile, paths } from './layout.ts';

export interface ProcRecord {
  name: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a recycled pid from ours. */
  startTime: string;
  argv: string[];
  log: string;
}

/** The environment servers get: PATH and HOME only, so a developer's AWS_*, VAULT_* or BAO_* cannot leak in. */
export function serverEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...extra };
}

function procStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ..." – comm may contain spaces, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '?', startTime: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

export function isRunning(rec: ProcRecord): boolean {
  const stat = procStat(rec.pid);
  return stat !== undefined && stat.startTime === rec.startTime && stat.state !== 'Z';
}

function pidFile(name: string): string {
  return join(paths.pids, `${name}.json`);
}

export function readRecord(name: string): ProcRecord | undefined {
  const file = pidFile(name);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ProcRecord) : undefined;
}

export function allRecords(): ProcRecord[] {
  if (!existsSync(paths.pids)) return [];
  return readdirSync(paths.pids)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(paths.pids, f), 'utf8')) as ProcRecord);
}

/** Records a process that someone else started (e.g. the Authentik stand-in's launcher). */
export function adoptProcess(name: string, pid: number, log: string): ProcRecord {
  const stat = procStat(pid);
  if (!stat) throw new Error(`${name}: pid ${pid} is not running`);
  let argv: string[] = [];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    // gone already; isRunning will say so
  }
  const rec: ProcRecord = { name, pid, startTime: stat.startTime, argv, log };
  mkdirSync(paths.pids, { recursive: true });
  writeFileSync(pidFile(name), JSON.stringify(rec, null, 2) + '\n');
  return rec;
}

let refusing = false;
/** After this, startDetached throws: a failed `stack:up` must not start anything while it cleans up. */
export function refuseNewProcesses(): void {
  refusing = true;
}

/** Starts `cmd args` detached, in its own process group, stdout+stderr appended to logs/<name>.log. */
export function startDetached(name: string, cmd: string, args: string[], env = serverEnv(), cwd?: string): ProcRecord {
  if (refusing) throw new Error(`${name}: not started, stack:up is stopping`);
  mkdirSync(paths.logs, { recursive: true });
  const log = logFile(name);
  const fd = openSync(log, 'a');
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env, cwd });
    child.on('error', () => undefined); // reported below via the missing pid / dead process
    child.unref();
    if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
    return adoptProcess(name, child.pid, log);
  } finally {
    closeSync(fd);
  }
}

/** Signals the process group of `rec` (or just the process, when it does not lead a group). */
function signalGroup(rec: ProcRecord, signal: NodeJS.Signals): void {
  for (const target of [-rec.pid, rec.pid]) {
    try {
      process.kill(target, signal);
      return;
    } catch {
      // ESRCH: group gone (or the process is not a group leader): try the process itself
      if (!isRunning(rec)) return;
    }
  }
}

/** SIGTERM the process groups, SIGKILL whatever is left after `graceMs`, forget the records. */
export async function stopProcesses(recs: ProcRecord[], graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const live = recs.filter(isRunning);
  for (const rec of live) signalGroup(rec, signal);
  const deadline = Date.now() + graceMs;
  while (live.some(isRunning) && Date.now() < deadline) await sleep(50);
  // SIGKILL also reaches members of a group whose leader already exited.
  for (const rec of live) signalGroup(rec, 'SIGKILL');
  while (live.some(isRunning)) await sleep(20);
  for (const rec of recs) rmSync(pidFile(rec.name), { force: true });
}

/** Stops every recorded process, dependencies last; returns those that were running. */
export async function stopAll(graceMs = 10_000): Promise<ProcRecord[]> {
  const recs = allRecords();
  const live = recs.filter(isRunning);
  // kube-apiserver takes 20 s+ to exit once etcd is gone (its endpoint reconciler keeps
  // retrying), and OpenBao may still talk to KMS while it shuts down.
  const last = new Set(['etcd', 'moto']);
  await stopProcesses(recs.filter((r) => !last.has(r.name)), graceMs);
  await stopProcesses(recs.filter((r) => last.has(r.name)), graceMs);
  return live;
}

/** Stops everything and removes the state dir. Idempotent. */
export async function teardown(opts: { quiet?: boolean } = {}): Promise<void> {
  const stopped = await stopAll();
  // Dead children of init stay zombies until init reaps them, which the sandbox's init does
  // lazily (seconds): wait, so that `pgrep` right after `stack:down` shows nothing.
  const deadline = Date.now() + 15_000;
  while (stopped.some((r) => procStat(r.pid)?.startTime === r.startTime) && Date.now() < deadline) await sleep(100);
  rmSync(STATE_DIR, { recursive: true, force: true });
  if (!opts.quiet) {
    const what = stopped.length ? `stopped ${stopped.map((r) => `${r.name} (pid ${r.pid})`).join(', ')}` : 'nothing was running';
    console.log(`${what}; removed ${STATE_DIR}`);
  }
}
