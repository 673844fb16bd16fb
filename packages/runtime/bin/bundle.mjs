#!/usr/bin/env node
// Bundles a job into one self-contained ES module file (internal packages and dependencies
// inlined), so the image needs only `node` and the bundle, and a cold start reads one file
// instead of walking node_modules. Usage (from a job folder): vk-bundle src/main.ts dist/<job>.mjs
import { writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const [entry = 'src/main.ts', outfile] = process.argv.slice(2);
if (!outfile) {
  process.stderr.write('usage: vk-bundle <entry.ts> <out.mjs>\n');
  process.exit(2);
}
const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'external',
  metafile: true,
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: { js: "import { createRequire as __vkCreateRequire } from 'node:module'; const require = __vkCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
// Which files went into the bundle, for the check that no dev-only package ships in the image
// (test/e2e/helm-image.test.ts); the image does not copy it.
writeFileSync(`${outfile}.meta.json`, JSON.stringify(result.metafile));
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stdout.write(`bundled ${outfile} (${(bytes / 1024).toFixed(0)} KiB with its source map)\n`);
