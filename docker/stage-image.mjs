// Lays out the image's /app from the built workspace: the entrypoint and one bundle per job,
// with the licence texts esbuild extracted. The Dockerfile's build stage runs exactly this
// (`node docker/stage-image.mjs /out`, then COPY /out/ /app/), and the tests run it too, so what
// they prove runs is what the image holds. Usage: node docker/stage-image.mjs <empty-dir> [job ...]
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [out, ...only] = process.argv.slice(2);
if (!out) {
  process.stderr.write('usage: node docker/stage-image.mjs <empty-dir> [job ...]\n');
  process.exit(2);
}
if (existsSync(out) && readdirSync(out).length > 0) {
  process.stderr.write(`${out} is not empty\n`);
  process.exit(2);
}

const jobs = only.length
  ? only
  : readdirSync(join(root, 'jobs'), { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(join(root, 'jobs', e.name, 'package.json')))
      .map((e) => e.name)
      .sort();

mkdirSync(join(out, 'jobs'), { recursive: true });
copyFileSync(join(root, 'docker', 'entrypoint.mjs'), join(out, 'vaultkeeper.mjs'));
const missing = [];
for (const job of jobs) {
  const bundle = join(root, 'jobs', job, 'dist', `${job}.mjs`);
  if (!existsSync(bundle)) {
    missing.push(job);
    continue;
  }
  copyFileSync(bundle, join(out, 'jobs', `${job}.mjs`));
  // Source maps and the esbuild metafile stay behind: the image runs without them.
  if (existsSync(`${bundle}.LEGAL.txt`)) copyFileSync(`${bundle}.LEGAL.txt`, join(out, 'jobs', `${job}.mjs.LEGAL.txt`));
  process.stdout.write(`staged ${job} (${(statSync(bundle).size / 1024).toFixed(0)} KiB)\n`);
}
if (missing.length) {
  process.stderr.write(`no bundle for ${missing.join(', ')}: run \`pnpm build\` first\n`);
  process.exit(1);
}
