import type { V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import { expect, it } from 'vitest';
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

it('collects every way a pod and a service account refer to Secrets', () => {
  const u = new UsageIndex();
  u.addPod(pod);
  const sa: V1ServiceAccount = { metadata: { namespace: 'app', name: 'builder' }, imagePullSecrets: [{ name: 'sa-pull' }], secrets: [{ name: 'sa-mountable' }] };
  u.addServiceAccount(sa);
  for (const name of ['pull', 'from-init', 'env-secret', 'envfrom-secret', 'vol-secret', 'proj-secret', 'csi-secret', 'ceph-secret', 'sa-pull', 'sa-mountable']) {
    expect(u.usedBy('app', name), name).toBeDefined();
  }
  expect(u.usedBy('app', 'cm')).toBeUndefined();
  expect(u.usedBy('other', 'pull')).toBeUndefined();
  expect(u.usedBy('app', 'env-secret')?.refs[0]).toEqual({ kind: 'Pod', name: 'web-0', via: 'env A (container app)' });
  expect(u.injectorPodFor('app', 'agent-tls')).toEqual({ pod: 'web-0', annotation: 'vault.hashicorp.com/tls-secret' });
  expect(u.injectorPodFor('app', 'agent-extra')?.pod).toBe('web-0');
  expect(u.usedBy('app', 'sa-pull')?.refs[0]?.kind).toBe('ServiceAccount');
});

it('clearing one kind keeps the other; references per Secret are capped, the count is not', () => {
  const u = new UsageIndex();
  for (let i = 0; i < 25; i++) u.addPod({ metadata: { namespace: 'app', name: `p${i}` }, spec: { containers: [], volumes: [{ name: 'v', secret: { secretName: 's' } }] } });
  u.addServiceAccount({ metadata: { namespace: 'app', name: 'sa' }, imagePullSecrets: [{ name: 's' }] });
  expect(u.usedBy('app', 's')?.count).toBe(26);
  expect(u.usedBy('app', 's')?.refs.length).toBe(10);
  u.clear('Pod');
  expect(u.usedBy('app', 's')).toEqual({ count: 1, refs: [{ kind: 'ServiceAccount', name: 'sa', via: 'imagePullSecrets' }] });
});
