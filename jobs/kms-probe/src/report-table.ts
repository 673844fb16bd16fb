// The table for a person: one row per check, its notes indented below, and the verdict. Holds
// names, states, addresses and times only; never a token, a key or a plaintext.
import type { CheckResult } from './check.ts';

const STATUS_TEXT = { ok: 'ok', warn: 'WARN', fail: 'FAIL', skipped: 'skipped' } as const;

export interface Verdict {
  ok: boolean;
  criticalFailures: string[];
  warnings: string[];
}

export function verdictOf(results: CheckResult[]): Verdict {
  const criticalFailures = results.filter((r) => r.status === 'fail' && r.severity === 'critical').map((r) => `${r.name}: ${r.summary}`);
  const warnings = results
    .filter((r) => r.status === 'warn' || (r.status === 'fail' && r.severity === 'warning'))
    .map((r) => `${r.name}: ${r.summary}`);
  return { ok: criticalFailures.length === 0, criticalFailures, warnings };
}

export function renderTable(results: CheckResult[], opts: { notes?: boolean; width?: number } = {}): string {
  const header = ['CHECK', 'RESULT', 'SEVERITY', 'LATENCY', 'DETAIL'];
  const rows = results.map((r) => [r.name, STATUS_TEXT[r.status], r.severity, r.status === 'skipped' ? '-' : `${r.latencyMs} ms`, r.summary]);
  const widths = header.slice(0, 4).map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 3 ? c.padStart(widths[i]!) : i < 4 ? c.padEnd(widths[i]!) : c))
      .join('  ')
      .trimEnd();
  const out = [line(header)];
  results.forEach((r, i) => {
    out.push(line(rows[i]!));
    if (opts.notes !== false && 'notes' in r && r.notes) for (const n of r.notes) out.push(`${' '.repeat(widths[0]! + 2)}· ${n}`);
  });
  const v = verdictOf(results);
  const failedCount = v.criticalFailures.length;
  out.push(
    '',
    v.ok
      ? `RESULT: OK${v.warnings.length ? ` with ${v.warnings.length} warning(s)` : ''}`
      : `RESULT: FAILED: ${failedCount} critical check${failedCount > 1 ? 's' : ''} failed${v.warnings.length ? `, ${v.warnings.length} warning(s)` : ''}`,
  );
  return out.map((l) => clip(l, opts.width)).join('\n') + '\n';
}

function clip(line: string, width: number | undefined): string {
  return width && line.length > width ? `${line.slice(0, width - 1)}…` : line;
}
