// Servers that join the stack after its core (OpenBao, moto, Kubernetes, Pushgateway, Authentik
// stand-in): each is started once the core is up, and `stack:up` on a healthy stack starts any
// that is not running yet, so adding one does not mean restarting the rest.
import { prometheusProblems, startPrometheus } from './prometheus.ts';
import type { StackInfo } from './stack.ts';
import { startVersitygw, versitygwProblems } from './versitygw.ts';

interface Addon<K extends 'versitygw' | 'prometheus'> {
  key: K;
  start(stack: StackInfo): Promise<StackInfo[K]>;
  problems(info: NonNullable<StackInfo[K]>): Promise<string[]>;
}

const ADDONS = [
  { key: 'versitygw', start: startVersitygw, problems: versitygwProblems } satisfies Addon<'versitygw'>,
  { key: 'prometheus', start: startPrometheus, problems: prometheusProblems } satisfies Addon<'prometheus'>,
] as const;

/** Starts every add-on that the stack does not have running; returns the updated stack. */
export async function startAddons(stack: StackInfo, log: (msg: string) => void): Promise<StackInfo> {
  const next: StackInfo = { ...stack };
  for (const addon of ADDONS) {
    const current = next[addon.key];
    if (current && (await (addon.problems as (i: typeof current) => Promise<string[]>)(current)).length === 0) continue;
    const info = await (addon.start as (s: StackInfo) => Promise<typeof current>)(next);
    Object.assign(next, { [addon.key]: info ?? null });
    if (info) log(`${addon.key} added to the stack`);
  }
  return next;
}

/** Problems of the add-ons the stack records as running (an add-on it never had is not a problem). */
export async function addonProblems(stack: StackInfo): Promise<string[]> {
  const out: string[] = [];
  for (const addon of ADDONS) {
    const info = stack[addon.key];
    if (info) out.push(...(await (addon.problems as (i: typeof info) => Promise<string[]>)(info)).map((p) => `${addon.key}: ${p}`));
  }
  return out;
}
