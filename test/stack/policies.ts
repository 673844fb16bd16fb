// Reads the project's policies-as-code from policies/ (see policies/README.md for the layout)
// and applies them to OpenBao. Generic: a new job folder needs no change here.
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { baoOk } from './http.ts';
import { POLICIES_DIR } from './layout.ts';

export interface PolicySet {
  /** ACL policies: policies/<job>/policy.hcl as vaultkeeper-<job>, any other <name>.hcl as <name>. */
  policies: { name: string; hcl: string; file: string }[];
  /** policies/<job>/kubernetes-role.json as auth/kubernetes/role/vaultkeeper-<job>. */
  kubernetesRoles: { name: string; body: KubernetesRole; file: string }[];
  /** policies/<job>/token-role-<name>.json as auth/token/roles/<name>. */
  tokenRoles: { name: string; body: Record<string, unknown>; file: string }[];
  /** policies/<job>/approle-role-<name>.json as auth/approle/role/<name> (AppRole enabled at approle/ when any exists). */
  approleRoles: { name: string; body: Record<string, unknown>; file: string }[];
}

export interface KubernetesRole {
  bound_service_account_names: string[];
  bound_service_account_namespaces: string[];
  audience?: string;
  token_policies: string[];
  [field: string]: unknown;
}

export function loadPolicies(dir = POLICIES_DIR): PolicySet {
  const set: PolicySet = { policies: [], kubernetesRoles: [], tokenRoles: [], approleRoles: [] };
  const jobs = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  for (const job of jobs) {
    for (const entry of readdirSync(join(dir, job)).sort()) {
      const file = join(dir, job, entry);
      if (entry === 'policy.hcl') {
        set.policies.push({ name: `vaultkeeper-${job}`, hcl: readFileSync(file, 'utf8'), file });
      } else if (entry.endsWith('.hcl')) {
        set.policies.push({ name: basename(entry, '.hcl'), hcl: readFileSync(file, 'utf8'), file });
      } else if (entry === 'kubernetes-role.json') {
        set.kubernetesRoles.push({ name: `vaultkeeper-${job}`, body: JSON.parse(readFileSync(file, 'utf8')) as KubernetesRole, file });
      } else if (entry.startsWith('token-role-') && entry.endsWith('.json')) {
        const name = basename(entry, '.json').slice('token-role-'.length);
        set.tokenRoles.push({ name, body: JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>, file });
      } else if (entry.startsWith('approle-role-') && entry.endsWith('.json')) {
        const name = basename(entry, '.json').slice('approle-role-'.length);
        set.approleRoles.push({ name, body: JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>, file });
      }
    }
  }
  if (set.policies.length === 0) throw new Error(`no policies found under ${dir}`);
  return set;
}

/** Writes every policy and role; the kubernetes auth method must already be enabled at kubernetes/. */
export async function applyPolicies(addr: string, token: string, set: PolicySet): Promise<void> {
  for (const p of set.policies) {
    await baoOk(addr, 'PUT', `sys/policies/acl/${p.name}`, { token, body: { policy: p.hcl } });
  }
  for (const r of set.tokenRoles) {
    await baoOk(addr, 'POST', `auth/token/roles/${r.name}`, { token, body: r.body });
  }
  for (const r of set.kubernetesRoles) {
    await baoOk(addr, 'POST', `auth/kubernetes/role/${r.name}`, { token, body: r.body });
  }
  if (set.approleRoles.length) {
    const auths = (await baoOk(addr, 'GET', 'sys/auth', { token })) as Record<string, unknown>;
    const mounts = (auths.data ?? auths) as Record<string, unknown>;
    if (!('approle/' in mounts)) await baoOk(addr, 'POST', 'sys/auth/approle', { token, body: { type: 'approle' } });
    for (const r of set.approleRoles) {
      await baoOk(addr, 'POST', `auth/approle/role/${r.name}`, { token, body: r.body });
    }
  }
}
