// `pnpm bench [filter]`: runs every test/bench/*.bench.ts and prints one table of figures and
// ratios against the baseline each bench measures in the same run. Never pass/fail on time.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  /** The same figure for the baseline (bare node, the common recipe, kubectl ...), same run. */
  baseline?: number;
  baselineName?: string;
  note?: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2];
const files = readdirSync(here).filter((f) => f.endsWith('.bench.ts') && (!filter || f.includes(filter))).sort();
const rows: Array<BenchRow & { bench: string }> = [];
for (const file of files) {
  process.stderr.write(`running ${file} ...\n`);
  const mod = (await import(pathToFileURL(join(here, file)).href)) as { run: () => Promise<BenchRow[]> };
  try {
    for (const row of await mod.run()) rows.push({ bench: file.replace(/\.bench\.ts$/, ''), ...row });
  } catch (err) {
    rows.push({ bench: file, name: 'FAILED', value: Number.NaN, unit: '', note: (err as Error).message });
  }
}

const fmt = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '' : n >= 100 ? n.toFixed(0) : n.toFixed(2));
const table = [
  ['bench', 'measure', 'value', 'unit', 'baseline', 'ratio', 'note'],
  ...rows.map((r) => [
    r.bench,
    r.name,
    fmt(r.value),
    r.unit,
    r.baseline === undefined ? '' : `${fmt(r.baseline)}${r.baselineName ? ` (${r.baselineName})` : ''}`,
    r.baseline ? `${(r.value / r.baseline).toFixed(2)}x` : '',
    r.note ?? '',
  ]),
];
const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
for (const [i, row] of table.entries()) {
  process.stdout.write(row.map((c, j) => c.padEnd(widths[j]!)).join('  ').trimEnd() + '\n');
  if (i === 0) process.stdout.write(widths.map((w) => '-'.repeat(w)).join('  ') + '\n');
}
