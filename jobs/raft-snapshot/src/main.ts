import { runJob } from '@vaultkeeper/runtime';
import { job } from './job.ts';

process.exitCode = await runJob(job);
