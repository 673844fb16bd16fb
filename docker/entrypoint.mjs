// The image's entrypoint: `vaultkeeper <job> [command] [options]` runs the bundled job named
// first (jobs/<job>.mjs beside this file) with the rest of the arguments, so one image serves
// every CronJob and the chart picks the job with the container's args. Plain JavaScript with no
// imports beyond Node's own: it runs before, and without, any bundle.
import { readdirSync } from 'node:fs';

const jobsDir = new URL('./jobs/', import.meta.url);
const jobs = readdirSync(jobsDir)
  .filter((f) => f.endsWith('.mjs'))
  .map((f) => f.slice(0, -'.mjs'.length))
  .sort();

// Take the job name out, so that the job sees exactly the arguments meant for it.
const [job] = process.argv.splice(2, 1);
const usage = `usage: vaultkeeper <job> [command] [options]; <job> --help lists its options\njobs: ${jobs.join(', ')}\n`;

if (job === '--help' || job === '-h' || job === 'help') {
  process.stdout.write(usage);
} else if (job === undefined || !jobs.includes(job)) {
  // Same shape as a job's own usage error (one JSON line), and the same exit code: 2.
  const line = {
    level: 'error',
    time: new Date().toISOString(),
    msg: 'invalid usage',
    error: job === undefined ? 'no job named' : `unknown job "${job}"`,
    jobs,
  };
  process.stdout.write(JSON.stringify(line) + '\n');
  process.stderr.write(usage);
  process.exitCode = 2;
} else {
  await import(new URL(`${job}.mjs`, jobsDir).href);
}
