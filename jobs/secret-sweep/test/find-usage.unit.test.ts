import type { V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import { expect, it } from 'vitest';
import { CONSUMER_KINDS, markerRefs, type ConsumerKind, type KubeObject } from '../src/consumers.ts';
import { UsageIndex } from '../src/find-usage.ts';

const pod: V1Pod = {
  metadata: {
    namespace: 'app',
    name: 'web-0',
    annotations: { 'vault.hashicorp.com/agent-extra-secret': 'agent-extra', 'vault.hashicorp.com/tls-secret': 'agent-tls' },
  },
  spec: {
    imagePullSecrets: [{ name: 'pull' }],
    initContainers: [{ name: 'init', envFrom: [{ secretRef: { name: 'from-init' } }] }],
    containers: [
      {
        name: 'app',
        env: [
          { name: 'A', valueFrom: { secretKeyRef: { name: 'env-secret', key: 'a' } } },
          { name: 'B', value: 'x' },
        ],
        envFrom: [{ secretRef: { name: 'envfrom-secret' } }, { configMapRef: { name: 'cm' } }],
      },
    ],
    volumes: [
      { name: 'v1', secret: { secretName: 'vol-secret' } },
      { name: 'v2', projected: { sources: [{ secret: { name: 'proj-secret' } }] } },
      { name: 'v3', csi: { driver: 'x', nodePublishSecretRef: { name: 'csi-secret' } } },
      { name: 'v4', cephfs: { monitors: ['m'], secretRef: { name: 'ceph-secret' } } },
    ],
  },
};

const kind = (k: string): ConsumerKind => CONSUMER_KINDS.find((c) => c.kind === k)!;

it('collects every way a pod and a service account refer to Secrets', () => {
  const u = new UsageIndex();
  u.addObject(kind('Pod'), pod as KubeObject);
  const sa: V1ServiceAccount = { metadata: { namespace: 'app', name: 'builder' }, imagePullSecrets: [{ name: 'sa-pull' }], secrets: [{ name: 'sa-mountable' }] };
  u.addObject(kind('ServiceAccount'), sa as KubeObject);
  for (const name of ['pull', 'from-init', 'env-secret', 'envfrom-secret', 'vol-secret', 'proj-secret', 'csi-secret', 'ceph-secret', 'sa-pull', 'sa-mountable']) {
    expect(u.usedBy('app', name), name).toBeDefined();
  }
  expect(u.usedBy('app', 'cm')).toBeUndefined();
  expect(u.usedBy('other', 'pull')).toBeUndefined();
  expect(u.usedBy('app', 'env-secret')?.refs[0]).toEqual({ kind: 'Pod', name: 'web-0', via: 'env A (container app)', rule: 'in-use.pod' });
  expect(u.injectorPodFor('app', 'agent-tls')).toEqual({ pod: 'web-0', annotation: 'vault.hashicorp.com/tls-secret' });
  expect(u.injectorPodFor('app', 'agent-extra')?.pod).toBe('web-0');
  expect(u.usedBy('app', 'sa-pull')?.refs[0]?.kind).toBe('ServiceAccount');
  expect(u.pods).toBe(1);
});

it('reads the pod templates of every workload kind, whatever their replicas', () => {
  const u = new UsageIndex();
  const template = { metadata: { annotations: { 'vault.hashicorp.com/tls-secret': 'agent-tls' } }, spec: pod.spec };
  u.addObject(kind('Deployment'), { metadata: { namespace: 'app', name: 'web' }, spec: { replicas: 0, template } });
  u.addObject(kind('CronJob'), { metadata: { namespace: 'app', name: 'nightly' }, spec: { jobTemplate: { spec: { template } } } });
  expect(u.usedBy('app', 'vol-secret')?.refs.map((r) => `${r.kind} ${r.name} ${r.via} ${r.rule}`)).toEqual([
    'Deployment web pod template volume v1 in-use.pod-template',
    'CronJob nightly pod template volume v1 in-use.pod-template',
  ]);
  expect(u.usedBy('app', 'agent-tls')?.count).toBe(2);
  // The injector's annotation on a template makes the Secret the injector's, as on a pod.
  expect(u.injectorPodFor('app', 'agent-tls')).toEqual({ pod: 'template of CronJob nightly', annotation: 'vault.hashicorp.com/tls-secret' });
});

it('Ingress TLS and ingress-nginx annotations, Gateway certificateRefs, StorageClass parameters, CR conventions', () => {
  const u = new UsageIndex();
  u.addObject(kind('Ingress'), {
    metadata: { namespace: 'app', name: 'web', annotations: { 'nginx.ingress.kubernetes.io/auth-tls-secret': 'certs/client-ca', 'nginx.ingress.kubernetes.io/auth-secret': 'basic' } },
    spec: { tls: [{ secretName: 'web-tls' }] },
  });
  u.addObject(kind('Gateway'), {
    metadata: { namespace: 'gw', name: 'edge' },
    spec: { listeners: [{ name: 'https', tls: { certificateRefs: [{ name: 'own' }, { name: 'shared', namespace: 'certs' }, { kind: 'ConfigMap', name: 'not-a-secret' }] } }] },
  });
  u.addObject(kind('StorageClass'), {
    metadata: { name: 'csi' },
    parameters: {
      'csi.storage.k8s.io/provisioner-secret-name': 'prov',
      'csi.storage.k8s.io/provisioner-secret-namespace': 'storage',
      'csi.storage.k8s.io/node-stage-secret-name': '${pvc.name}-stage',
      'csi.storage.k8s.io/node-stage-secret-namespace': '${pvc.namespace}',
      userSecretName: 'ceph-user',
    },
  });
  u.addObject(kind('Issuer'), { metadata: { namespace: 'app', name: 'le' }, spec: { acme: { privateKeySecretRef: { name: 'acme-key' }, solvers: [{ dns01: { cloudflare: { apiTokenSecretRef: { name: 'cf', key: 'token' } } } }] } } });
  u.addObject(kind('ClusterIssuer'), { metadata: { name: 'ca' }, spec: { ca: { secretName: 'root-ca' } } });
  u.addObject(kind('GitRepository'), { metadata: { namespace: 'flux', name: 'apps' }, spec: { secretRef: { name: 'git' }, verify: { secretRef: { name: 'gpg' } } } });

  expect(u.usedBy('app', 'web-tls')?.refs[0]).toEqual({ kind: 'Ingress', name: 'web', via: 'spec.tls secretName', rule: 'in-use.ingress' });
  expect(u.usedBy('certs', 'client-ca')?.refs[0]?.name).toBe('app/web');
  expect(u.usedBy('app', 'basic')).toBeDefined();
  expect(u.usedBy('gw', 'own')?.refs[0]?.rule).toBe('in-use.gateway');
  expect(u.usedBy('certs', 'shared')?.refs[0]?.name).toBe('gw/edge');
  expect(u.usedBy('gw', 'not-a-secret')).toBeUndefined();
  expect(u.usedBy('storage', 'prov')?.refs[0]?.rule).toBe('in-use.storage-class');
  expect(u.usedBy('any', 'data-0-stage')?.refs[0]?.via).toBe('parameters csi.storage.k8s.io/node-stage-secret-name');
  expect(u.usedBy('any', 'stage')).toBeUndefined();
  expect(u.usedBy('whatever', 'ceph-user')).toBeDefined();
  expect(u.usedBy('app', 'acme-key')?.refs[0]?.via).toBe('spec.acme.privateKeySecretRef');
  expect(u.usedBy('app', 'cf')?.refs[0]?.via).toBe('spec.acme.solvers[0].dns01.cloudflare.apiTokenSecretRef');
  expect(u.usedBy('cert-manager', 'root-ca')?.refs[0]).toMatchObject({ kind: 'ClusterIssuer', rule: 'in-use.cert-manager-issuer' });
  expect(u.usedBy('flux', 'git')?.refs[0]?.rule).toBe('in-use.flux-source');
  expect(u.usedBy('flux', 'gpg')?.refs[0]?.via).toBe('spec.verify.secretRef');
});

it('a list that completes is merged; references per Secret are capped, the count is not', () => {
  const u = new UsageIndex();
  const pods = new UsageIndex();
  for (let i = 0; i < 25; i++) pods.addObject(kind('Pod'), { metadata: { namespace: 'app', name: `p${i}` }, spec: { containers: [], volumes: [{ name: 'v', secret: { secretName: 's' } }] } });
  u.addObject(kind('ServiceAccount'), { metadata: { namespace: 'app', name: 'sa' }, imagePullSecrets: [{ name: 's' }] });
  expect(u.usedBy('app', 's')).toEqual({ count: 1, refs: [{ kind: 'ServiceAccount', name: 'sa', via: 'imagePullSecrets', rule: 'in-use.service-account' }] });
  u.merge(pods);
  expect(u.usedBy('app', 's')?.count).toBe(26);
  expect(u.usedBy('app', 's')?.refs.length).toBe(10);
  expect(u.pods).toBe(25);
});

it('names the kinds that could not be listed for a namespace', () => {
  const u = new UsageIndex();
  u.unreadable.push({ kind: 'CronJob', namespace: 'a', status: 403 }, { kind: 'StorageClass', status: 403 });
  expect(u.unknownFor('a')).toEqual(['CronJob', 'StorageClass']);
  expect(u.unknownFor('b')).toEqual(['StorageClass']);
});

it('recognises Argo CD Secrets by their label', () => {
  expect(markerRefs({ 'argocd.argoproj.io/secret-type': 'cluster' })).toEqual([{ kind: 'Argo CD', name: 'cluster', via: 'label argocd.argoproj.io/secret-type=cluster', rule: 'in-use.argocd' }]);
  expect(markerRefs({ app: 'x' })).toEqual([]);
});

it('reads Gateway backend and validation certificate refs of kind Secret only, and an Istio Gateway credentialName in any namespace', () => {
  const u = new UsageIndex();
  u.addObject(kind('Gateway'), {
    metadata: { namespace: 'infra', name: 'gw' },
    spec: {
      listeners: [{ name: 'https', tls: { certificateRefs: [{ name: 'listener-cert', namespace: 'app' }], frontendValidation: { caCertificateRefs: [{ kind: 'ConfigMap', name: 'ca-cm' }, { kind: 'Secret', group: '', name: 'ca-secret' }] } } }],
      tls: { backend: { clientCertificateRef: { name: 'client-cert' } }, frontend: { default: { validation: { caCertificateRefs: [{ name: 'no-kind' }] } } } },
    },
  });
  expect(u.usedBy('app', 'listener-cert')?.refs[0]).toMatchObject({ kind: 'Gateway', name: 'infra/gw' });
  expect(u.usedBy('infra', 'ca-secret')).toBeDefined();
  expect(u.usedBy('infra', 'client-cert')?.refs[0]?.via).toBe('spec.tls.backend.clientCertificateRef');
  // caCertificateRefs name a ConfigMap unless they say Secret.
  expect(u.usedBy('infra', 'ca-cm')).toBeUndefined();
  expect(u.usedBy('infra', 'no-kind')).toBeUndefined();

  u.addObject(kind('Istio Gateway'), {
    metadata: { namespace: 'istio-config', name: 'ingress' },
    spec: { servers: [{ tls: { credentialName: 'shop-tls' } }, { tls: { credentialName: 'edge/edge-tls' } }] },
  });
  // Read in the gateway workload's namespace, which the selector picks: any.
  expect(u.usedBy('shop', 'shop-tls')?.refs[0]).toMatchObject({ kind: 'Istio Gateway', rule: 'in-use.istio-gateway' });
  expect(u.usedBy('edge', 'edge-tls')).toBeDefined();
  expect(u.usedBy('shop', 'edge-tls')).toBeUndefined();
});

it('lists the kinds that can name another namespace\'s Secret cluster-wide, whatever the sweep\'s namespaces', () => {
  expect(CONSUMER_KINDS.filter((k) => k.namespaced && k.crossNamespace).map((k) => k.kind).sort()).toEqual(['Gateway', 'Ingress', 'Istio Gateway']);
});
