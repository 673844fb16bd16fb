// The example alert rules of docs/alerts.md: valid for Prometheus, and each alert fires when it
// should and not before (promtool's own rule unit tests, test/e2e/fixtures/alerts/). That the
// rules name metrics the jobs really push is checked after real runs, in helm-install.test.ts.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../stack/layout.ts';
import { run } from '../helm/chart.ts';

function findPromtool(): string | undefined {
  const candidates = [
    ...(process.env.PATH ?? '').split(':').map((d) => join(d, 'promtool')),
    join(process.env.VAULTKEEPER_CACHE ?? join(process.env.HOME ?? '', '.cache/vaultkeeper'), 'bin', 'promtool'),
  ];
  return candidates.find((c) => existsSync(c));
}

const promtool = findPromtool();
if (!promtool) console.warn('!!! SKIPPED: the alert rule checks: promtool is not installed (Debian package prometheus; see docs/alerts.md)');

describe.skipIf(!promtool)('docs/prometheus-rules.yaml', () => {
  it('is a valid Prometheus rules file', async () => {
    const res = await run(promtool!, ['check', 'rules', join(REPO_ROOT, 'docs/prometheus-rules.yaml')]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
  });

  it('fires each alert when it should, and not before', async () => {
    const res = await run(promtool!, ['test', 'rules', join(REPO_ROOT, 'test/e2e/fixtures/alerts/vaultkeeper-rules.test.yaml')]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('SUCCESS');
  });
});
