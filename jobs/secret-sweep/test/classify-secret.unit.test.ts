import { describe, expect, it } from 'vitest';
import { classifySecret, globMatch, type ClassifyContext, type SecretMeta } from '../src/classify-secret.ts';

const ctx = (over: Partial<ClassifyContext> = {}): ClassifyContext => ({
  ignore: { namespaces: ['kube-*'], names: ['legacy-*', 'team-b/keep-me'], labels: ['sweep=skip', 'vendor'], annotation: 'vaultkeeper.io/ignore' },
  injectorPodFor: () => undefined,
  ...over,
});
const secret = (meta: NonNullable<SecretMeta['metadata']>, type = 'Opaque'): SecretMeta => ({ metadata: { namespace: 'app', name: 's', ...meta }, type });

describe('classifySecret', () => {
  it.each([
    ['kubernetes.io/service-account-token', 'system.service-account-token'],
    ['bootstrap.kubernetes.io/token', 'system.bootstrap-token'],
    ['helm.sh/release.v1', 'system.helm-release'],
  ])('type %s is system (%s)', (type, rule) => {
    expect(classifySecret(secret({}, type), ctx())).toMatchObject({ class: 'system', rule });
  });

  it.each<[string, NonNullable<SecretMeta['metadata']>, string]>([
    ['SealedSecret owner', { ownerReferences: [{ apiVersion: 'bitnami.com/v1alpha1', kind: 'SealedSecret', name: 'db' }] }, 'managed.sealed-secrets'],
    ['sealed-secrets managed annotation', { annotations: { 'sealedsecrets.bitnami.com/managed': 'true' } }, 'managed.sealed-secrets'],
    ['sealed-secrets key label', { labels: { 'sealedsecrets.bitnami.com/sealed-secrets-key': 'active' } }, 'managed.sealed-secrets'],
    ['cert-manager annotation', { annotations: { 'cert-manager.io/certificate-name': 'web' } }, 'managed.cert-manager'],
    ['cert-manager fao label', { labels: { 'controller.cert-manager.io/fao': 'true' } }, 'managed.cert-manager'],
    ['ESO label', { labels: { 'reconcile.external-secrets.io/managed': 'true' } }, 'managed.external-secrets'],
    ['ESO owner', { ownerReferences: [{ apiVersion: 'external-secrets.io/v1', kind: 'ExternalSecret', name: 'x' }] }, 'managed.external-secrets'],
    ['VSO label', { labels: { 'app.kubernetes.io/managed-by': 'hashicorp-vso' } }, 'managed.vault-secrets-operator'],
    ['CSI label', { labels: { 'secrets-store.csi.k8s.io/managed': 'true' } }, 'managed.secrets-store-csi'],
  ])('%s is managed', (_what, meta, rule) => {
    const c = classifySecret(secret(meta), ctx());
    expect(c).toMatchObject({ class: 'managed', rule });
    expect(c.reason).not.toBe('');
  });

  it('a SealedSecret owner of another apiVersion, or an unknown owner, does not make it managed', () => {
    expect(classifySecret(secret({ ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'SealedSecret', name: 'x' }] }), ctx()).class).toBe('leftover');
    expect(classifySecret(secret({ ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'x' }] }), ctx()).class).toBe('leftover');
  });

  it('a label with the wrong value is not a marker', () => {
    expect(classifySecret(secret({ labels: { 'reconcile.external-secrets.io/managed': 'false' } }), ctx()).class).toBe('leftover');
  });

  it('the Vault agent injector annotations on a pod make the named Secret managed', () => {
    const c = classifySecret(
      secret({ name: 'agent-tls' }),
      ctx({ injectorPodFor: (ns, n) => (ns === 'app' && n === 'agent-tls' ? { pod: 'web-0', annotation: 'vault.hashicorp.com/tls-secret' } : undefined) }),
    );
    expect(c).toMatchObject({ class: 'managed', rule: 'managed.vault-agent-injector' });
    expect(c.reason).toContain('web-0');
  });

  it.each<[string, NonNullable<SecretMeta['metadata']>, string]>([
    ['annotation', { annotations: { 'vaultkeeper.io/ignore': 'True' } }, 'ignored.annotation'],
    ['namespace glob', { namespace: 'kube-public' }, 'ignored.namespace'],
    ['name glob', { name: 'legacy-db' }, 'ignored.name'],
    ['namespace/name glob', { namespace: 'team-b', name: 'keep-me' }, 'ignored.name'],
    ['label key=value', { labels: { sweep: 'skip' } }, 'ignored.label'],
    ['label key', { labels: { vendor: 'acme' } }, 'ignored.label'],
  ])('ignored by %s', (_what, meta, rule) => {
    expect(classifySecret(secret(meta), ctx())).toMatchObject({ class: 'ignored', rule });
  });

  it('the ignore annotation must say true; system and managed win over ignore rules', () => {
    expect(classifySecret(secret({ annotations: { 'vaultkeeper.io/ignore': 'no' } }), ctx()).class).toBe('leftover');
    expect(classifySecret(secret({ namespace: 'kube-system' }, 'kubernetes.io/service-account-token'), ctx()).class).toBe('system');
    expect(classifySecret(secret({ name: 'legacy-x', labels: { 'controller.cert-manager.io/fao': 'true' } }), ctx()).class).toBe('managed');
  });

  it('everything else is a leftover', () => {
    expect(classifySecret(secret({}), ctx())).toEqual({ class: 'leftover', rule: 'leftover', reason: 'no controller marker and no ignore rule' });
  });
});

describe('globMatch', () => {
  it('matches * and ? and treats the rest literally', () => {
    expect(globMatch('kube-*', 'kube-system')).toBe(true);
    expect(globMatch('kube-*', 'xkube-system')).toBe(false);
    expect(globMatch('db-?', 'db-1')).toBe(true);
    expect(globMatch('a.b', 'axb')).toBe(false);
  });
});
