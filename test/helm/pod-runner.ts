// Runs a Job's pod as a local process, the way a kubelet would have started its container.
//
// The stack's apiserver has no scheduler and no kubelet, so a Job's pod stays Pending. This takes
// the pod template the apiserver stored (after `kubectl create job --from=cronjob/...`) and
// reproduces what the kubelet would do with it:
//   - the command: the image's ENTRYPOINT (read from the Dockerfile) + the container's args, with
//     the image's files (/app) taken from the folder docker/stage-image.mjs laid out;
//   - the environment: exactly the container's env and envFrom, nothing inherited;
//   - every volume: ConfigMaps read from the apiserver, projected service-account tokens minted by
//     the apiserver's TokenRequest API for the pod's ServiceAccount with the audience and lifetime
//     the volume asks for, downward-API files, emptyDirs; each in a temp folder, and every path in
//     the env and args that points into a mount rewritten to that folder.
// What cannot be reproduced is said where it is stood in for (the in-cluster apiserver address,
// the AWS web-identity credentials an EKS pod would get).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { mintServiceAccountToken, readStack } from '../stack/stack.ts';
import { jwtClaims, kubectlAs, type ImageSpec } from './chart.ts';
import { parseJobOutput } from '../support/run-job.ts';

export interface PodRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  all: string;
  lines: Array<Record<string, unknown>>;
  summary: Record<string, unknown> | undefined;
  /** The argv and environment the process got (paths already mapped). */
  argv: string[];
  env: Record<string, string>;
  /** Claims of each service-account token minted for the pod's volumes, by file path in the pod. */
  tokens: Record<string, Record<string, any>>;
  /** The tokens themselves, by the same paths: to prove none of them shows in the output. */
  tokenValues: Record<string, string>;
  /** Mount path → local folder. */
  mounts: Record<string, string>;
  /** The temp folder holding every mount (tokens included): remove it when done. */
  dir: string;
}

export interface RunPodOptions {
  /** The Job object as the apiserver returns it. */
  job: any;
  /** The image's layout: ENTRYPOINT, WORKDIR, from the Dockerfile. */
  image: ImageSpec;
  /** Local folder holding what the image has at its WORKDIR (docker/stage-image.mjs output). */
  imageRoot: string;
  /** Environment the platform would add (e.g. AWS web-identity credentials on EKS). */
  platformEnv?: Record<string, string>;
  timeoutMs?: number;
}

const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

async function getConfigMap(namespace: string, name: string): Promise<Record<string, string> | undefined> {
  const res = await kubectlAs(['-n', namespace, 'get', 'configmap', name, '-o', 'json']);
  if (res.code !== 0) {
    if (/NotFound/.test(res.stderr)) return undefined;
    throw new Error(`get configmap ${namespace}/${name}: ${res.stderr.trim()}`);
  }
  return (JSON.parse(res.stdout).data ?? {}) as Record<string, string>;
}

function fieldRef(path: string, namespace: string, pod: { name: string; serviceAccount: string }): string {
  switch (path) {
    case 'metadata.namespace':
      return namespace;
    case 'metadata.name':
      return pod.name;
    case 'spec.serviceAccountName':
      return pod.serviceAccount;
    default:
      throw new Error(`fieldRef ${path} is not reproduced locally`);
  }
}

export async function runPodLocally(opts: RunPodOptions): Promise<PodRun> {
  const stack = readStack();
  const job = opts.job;
  const namespace: string = job.metadata.namespace;
  const spec = job.spec.template.spec;
  if (spec.containers.length !== 1) throw new Error(`expected one container, got ${spec.containers.length}`);
  const container = spec.containers[0];
  const serviceAccount: string = spec.serviceAccountName ?? 'default';
  const pod = { name: `${job.metadata.name}-local`, serviceAccount };
  const base = mkdtempSync(join(tmpdir(), `vk-pod-${job.metadata.name}-`));
  const mounts: Record<string, string> = {};
  const tokens: Record<string, Record<string, any>> = {};
  const tokenValues: Record<string, string> = {};

  // ---- volumes --------------------------------------------------------------------------------
  const volumes = new Map<string, any>((spec.volumes ?? []).map((v: any) => [v.name, v]));
  const writeInto = (dir: string, file: string, content: string, mode = 0o644) => {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), content, { mode });
  };
  const configMapFiles = async (dir: string, src: any) => {
    let data = await getConfigMap(namespace, src.name);
    // No controller-manager runs in the stack, so nothing publishes kube-root-ca.crt; its
    // content would be the cluster CA, which the stack has.
    if (!data && src.name === 'kube-root-ca.crt') data = { 'ca.crt': readFileSync(stack.kube.caFile, 'utf8') };
    if (!data) {
      if (src.optional) return;
      throw new Error(`ConfigMap ${namespace}/${src.name} does not exist: the kubelet would not start this pod`);
    }
    const items: Array<{ key: string; path: string }> = src.items ?? Object.keys(data).map((k) => ({ key: k, path: k }));
    for (const item of items) {
      if (data[item.key] === undefined) throw new Error(`ConfigMap ${src.name} has no key ${item.key}`);
      writeInto(dir, item.path, data[item.key]!);
    }
  };
  for (const [i, mount] of (container.volumeMounts ?? []).entries()) {
    const volume = volumes.get(mount.name);
    if (!volume) throw new Error(`volumeMount ${mount.name} names no volume`);
    const dir = join(base, `mount-${i}-${mount.name}`);
    mkdirSync(dir, { recursive: true });
    mounts[mount.mountPath] = dir;
    if (volume.configMap) await configMapFiles(dir, volume.configMap);
    else if (volume.emptyDir) {
      // nothing to put in it
    } else if (volume.projected) {
      for (const src of volume.projected.sources ?? []) {
        if (src.serviceAccountToken) {
          const t = src.serviceAccountToken;
          const jwt = await mintServiceAccountToken(namespace, serviceAccount, {
            ...(t.audience ? { audience: t.audience } : {}),
            expirationSeconds: t.expirationSeconds ?? 3600,
          });
          writeInto(dir, t.path, jwt, 0o600);
          tokens[join(mount.mountPath, t.path)] = jwtClaims(jwt);
          tokenValues[join(mount.mountPath, t.path)] = jwt;
        } else if (src.configMap) await configMapFiles(dir, src.configMap);
        else if (src.downwardAPI) {
          for (const item of src.downwardAPI.items ?? []) writeInto(dir, item.path, fieldRef(item.fieldRef.fieldPath, namespace, pod));
        } else throw new Error(`projected source ${Object.keys(src).join(',')} is not reproduced locally`);
      }
    } else throw new Error(`volume type ${Object.keys(volume).filter((k) => k !== 'name').join(',')} is not reproduced locally`);
  }

  // Longest mount first, so /etc/vaultkeeper/vault-ca wins over /etc/vaultkeeper.
  const mountPaths = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const imageDir = opts.image.workdir.replace(/\/$/, '');
  const mapPath = (value: string): string => {
    for (const m of mountPaths) {
      if (value === m || value.startsWith(`${m}/`)) return mounts[m]! + value.slice(m.length);
    }
    if (value === imageDir || value.startsWith(`${imageDir}/`)) return opts.imageRoot + value.slice(imageDir.length);
    return value;
  };

  // ---- environment: exactly the container's ------------------------------------------------------
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (!from.configMapRef) throw new Error('only envFrom configMapRef is reproduced locally');
    const data = (await getConfigMap(namespace, from.configMapRef.name)) ?? {};
    for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ''}${k}`] = v;
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) env[e.name] = fieldRef(e.valueFrom.fieldRef.fieldPath, namespace, pod);
    else if (e.valueFrom?.configMapKeyRef) {
      const data = await getConfigMap(namespace, e.valueFrom.configMapKeyRef.name);
      const v = data?.[e.valueFrom.configMapKeyRef.key];
      if (v !== undefined) env[e.name] = v;
    } else if (e.valueFrom) throw new Error(`env ${e.name}: valueFrom ${Object.keys(e.valueFrom).join(',')} is not reproduced locally`);
    else env[e.name] = '';
  }
  for (const [k, v] of Object.entries(env)) env[k] = mapPath(v);

  // In a pod, an in-cluster client finds the apiserver through KUBERNETES_SERVICE_HOST/PORT (set
  // by the kubelet) and reads token, ca.crt and namespace from IN_CLUSTER_DIR. Locally, the same
  // three files, mounted above from the pod's own projected volume, go into a kubeconfig that
  // points at the stack's apiserver.
  const inCluster = mounts[IN_CLUSTER_DIR];
  if (inCluster) {
    const kubeconfig = join(base, 'in-cluster.kubeconfig');
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'in-cluster', cluster: { server: stack.kube.server, 'certificate-authority': join(inCluster, 'ca.crt') } }],
        // tokenFile is kubectl's spelling, token-file @kubernetes/client-node's: the file is read
        // on use, as an in-cluster client re-reads the projected token the kubelet refreshes.
        users: [{ name: 'pod', user: { tokenFile: join(inCluster, 'token'), 'token-file': join(inCluster, 'token') } }],
        contexts: [{ name: 'pod', context: { cluster: 'in-cluster', user: 'pod', namespace: readFileSync(join(inCluster, 'namespace'), 'utf8') } }],
        'current-context': 'pod',
      }),
      { mode: 0o600 },
    );
    env.KUBECONFIG = kubeconfig;
  }
  Object.assign(env, opts.platformEnv ?? {});

  // ---- the command: ENTRYPOINT + args, as the image runs them ----------------------------------------
  const command: string[] = container.command ?? opts.image.entrypoint;
  const args: string[] = container.args ?? (container.command ? [] : opts.image.cmd);
  let argv = [...command, ...args];
  // tini only forwards signals and reaps children for node; locally node is not PID 1.
  if (/\/tini$/.test(argv[0] ?? '')) argv = argv.slice(argv[1] === '--' ? 2 : 1);
  if (!/\/node$/.test(argv[0] ?? '')) throw new Error(`expected the entrypoint to run node, got ${argv[0]}`);
  argv = [process.execPath, ...argv.slice(1).map(mapPath)];

  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, cwd: mapPath(container.workingDir ?? opts.image.workdir), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const { lines, summary } = parseJobOutput(stdout);
      resolve({ code, signal, stdout, stderr, all: stdout + stderr, lines, summary, argv, env, tokens, tokenValues, mounts, dir: base });
    });
  });
}
