// globalSetup of the vitest `stack` project: the tests need the local stack running. It is
// never started from here (it takes a while and outlives the test run): fail loudly instead.
import { existsSync } from 'node:fs';
import { paths } from './layout.ts';
import { readStack, stackProblems } from './stack.ts';

const NOT_RUNNING = 'the local stack is not running: run `pnpm stack:up` (or ./dev/test)';

export default async function setup(): Promise<void> {
  if (!existsSync(paths.stackJson)) throw new Error(NOT_RUNNING);
  const problems = await stackProblems(readStack());
  if (problems.length) throw new Error(`${NOT_RUNNING}\n  ${problems.join('\n  ')}`);
}
