import { parseArgs } from 'node:util';
import { UsageError } from './errors.ts';
import type { EnvMap } from './config.ts';

export interface OptionSpec {
  type: 'boolean' | 'string';
  description: string;
  short?: string;
}

/** Options every job understands. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h', description: 'show this help and exit' },
  'dry-run': { type: 'boolean', description: 'say what would be done, change nothing' },
  config: { type: 'string', description: 'YAML or JSON config file (also VAULTKEEPER_CONFIG); environment variables override it' },
};

export interface ParsedCommandLine {
  command: string;
  positionals: string[];
  options: Record<string, string | boolean | undefined>;
}

export function parseCommandLine(
  argv: string[],
  commands: Record<string, string>,
  options: Record<string, OptionSpec>,
): ParsedCommandLine {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(
        Object.entries({ ...COMMON_OPTIONS, ...options }).map(([k, o]) => [k, o.short ? { type: o.type, short: o.short } : { type: o.type }]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    // parseArgs names the offending option; it never contains a value of ours.
    throw new UsageError((err as Error).message);
  }
  const names = Object.keys(commands);
  const [first, ...rest] = parsed.positionals;
  let command = names[0] ?? 'run';
  let positionals = parsed.positionals;
  if (first !== undefined && names.includes(first)) {
    command = first;
    positionals = rest;
  } else if (first !== undefined && names.length > 0 && !commandTakesArgs(commands[command])) {
    throw new UsageError(`unknown command "${first}"; expected one of: ${names.join(', ')}`);
  }
  return { command, positionals, options: parsed.values as Record<string, string | boolean | undefined> };
}

function commandTakesArgs(doc: string | undefined): boolean {
  return doc !== undefined && /<[^>]+>/.test(doc);
}

export interface HelpInput {
  name: string;
  title: string;
  description: string;
  commands: Record<string, string>;
  options: Record<string, OptionSpec>;
  env: EnvMap;
}

export function renderHelp(h: HelpInput): string {
  const lines = [`vaultkeeper ${h.name}: ${h.title}`, '', h.description.trim(), ''];
  const cmds = Object.entries(h.commands);
  if (cmds.length) {
    lines.push(`Usage: ${h.name} [${cmds.map(([c]) => c).join('|')}] [options]`, '', 'Commands:');
    cmds.forEach(([c, doc], i) => lines.push(`  ${c.padEnd(18)} ${doc}${i === 0 ? ' (default)' : ''}`));
  } else lines.push(`Usage: ${h.name} [options]`);
  lines.push('', 'Options:');
  for (const [k, o] of Object.entries({ ...COMMON_OPTIONS, ...h.options })) {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${k}${o.type === 'string' ? ' <value>' : ''}`;
    lines.push(`  ${flag.padEnd(28)} ${o.description}`);
  }
  lines.push('', 'Environment (overrides the config file; the file uses the dotted keys):');
  for (const [name, b] of Object.entries(h.env)) {
    lines.push(`  ${name.padEnd(32)} ${b.path}${b.secret ? ' [secret]' : ''}: ${b.doc}`);
  }
  lines.push('', 'Exit codes: 0 done, 1 failed, 2 bad config or usage.', '');
  return lines.join('\n');
}
