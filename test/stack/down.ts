// `pnpm stack:down`: stops every process of the local stack (SIGTERM by process group, SIGKILL
// after a grace period) and removes the state dir. Idempotent.
import { teardown } from './proc.ts';

const t0 = Date.now();
await teardown();
console.log(`stack is down (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
