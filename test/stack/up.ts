// `pnpm stack:up`: starts the local stack of real servers on 127.0.0.1 and writes
// $VAULTKEEPER_STACK_DIR/stack.json (read by stack.ts). Idempotent: a healthy stack is left
// alone; a half-up one is torn down and started again.
//
//   moto (S3 + KMS) ─┬─> OpenBao x3 (Raft, awskms seal) ─┐
//   etcd ─> kube-apiserver ─> namespace, SAs, reviewer ──┼─> bootstrap OpenBao ─> Authentik stand-in
//   pushgateway                                          ┘
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { baoApi, baoOk, kubeApi, useBaoTls, waitFor, type KubeTarget } from './http.ts';
import { BAO_CERT_SANS, BAO_SERVICE_NAME, BAO_TLS, HOST, NAMESPACE, baoNodeHost, PORTS, REPO_ROOT, REVIEWER_SA, SA_ISSUER, STATE_DIR, logFile, paths, realBaoBinary, which } from './layout.ts';
import { startAddons } from './addons.ts';
import { applyPolicies, loadPolicies, type PolicySet } from './policies.ts';
import { adoptProcess, refuseNewProcesses, startDetached, stopAll, teardown } from './proc.ts';
import { type BaoNode, type StackInfo, nodeProcessName, readStack, stackProblems } from './stack.ts';

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const log = (msg: string) => console.log(`[stack ${elapsed().padStart(6)}] ${msg}`);

const AWS = { region: 'us-east-1', accessKeyId: 'test', secretAccessKey: 'test' };
const API_AUDIENCES = [SA_ISSUER, 'vault'];

function writeSecret(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: HOST, port });
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
}

// ---- moto: KMS keys and S3 buckets ---------------------------------------------------

async function startMoto(): Promise<StackInfo['aws']> {
  const endpoint = `http://${HOST}:${PORTS.moto}`;
  startDetached('moto', which('moto_server'), ['-H', HOST, '-p', String(PORTS.moto)]);
  await waitFor('moto', 60_000, async () => (await fetch(endpoint)).status < 500);
  const clientConfig = { endpoint, region: AWS.region, credentials: { accessKeyId: AWS.accessKeyId, secretAccessKey: AWS.secretAccessKey } };
  const kms = new KMSClient(clientConfig);
  const makeKey = async (alias: string, description: string) => {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Description: description, KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }));
    if (!KeyMetadata?.KeyId || !KeyMetadata.Arn) throw new Error('moto CreateKey returned no key');
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: KeyMetadata.KeyId }));
    return { keyId: KeyMetadata.KeyId, arn: KeyMetadata.Arn, alias };
  };
  const unsealKey = await makeKey('alias/vaultkeeper-unseal', 'vaultkeeper local stack: OpenBao auto-unseal');
  const dataKey = await makeKey('alias/vaultkeeper-data', 'vaultkeeper local stack: S3 SSE-KMS and envelope encryption');
  const s3 = new S3Client({ ...clientConfig, forcePathStyle: true });
  const buckets = { snapshots: 'vaultkeeper-snapshots', breakglass: 'vaultkeeper-breakglass' };
  await s3.send(new CreateBucketCommand({ Bucket: buckets.snapshots }));
  await s3.send(new CreateBucketCommand({ Bucket: buckets.breakglass }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: buckets.breakglass, VersioningConfiguration: { Status: 'Enabled' } }));
  kms.destroy();
  s3.destroy();
  log(`moto up on ${endpoint}: KMS keys ${unsealKey.alias}, ${dataKey.alias}; buckets ${buckets.snapshots}, ${buckets.breakglass}`);
  return { endpoint, ...AWS, unsealKey, dataKey, buckets };
}

// ---- OpenBao -------------------------------------------------------------------------

function baoNodes(): BaoNode[] {
  return PORTS.baoApi.map((port, i) => ({
    index: i,
    id: nodeProcessName(i),
    addr: `${BAO_TLS ? 'https' : 'http'}://${baoNodeHost(i)}:${port}`,
    clusterAddr: `https://${baoNodeHost(i)}:${PORTS.baoCluster[i]}`,
    configFile: join(paths.bao(i), 'config.hcl'),
    dataDir: join(paths.bao(i), 'raft'),
    logFile: logFile(nodeProcessName(i)),
  }));
}

/**
 * The production config shape: Raft + awskms seal, TLS from the stack CA with a certificate that
 * covers the Service names but not the node's own address (so retry_join names the server it
 * expects, as vault-helm's TLS guide has it), api_addr/cluster_addr on the node's own address.
 */
function baoConfig(n: BaoNode, nodes: BaoNode[], aws: StackInfo['aws']): string {
  const peers = nodes.filter((p) => p.index !== n.index);
  const pki = (f: string) => join(paths.pki, f);
  const tls = BAO_TLS
    ? `  tls_cert_file   = "${pki('bao.crt')}"\n  tls_key_file    = "${pki('bao.key')}"\n  tls_min_version = "tls12"`
    : '  tls_disable     = true';
  const join_ = (p: BaoNode) => BAO_TLS
    ? `  retry_join {\n    leader_api_addr       = "${p.addr}"\n    leader_ca_cert_file   = "${pki('ca.crt')}"\n    leader_tls_servername = "${BAO_SERVICE_NAME}"\n  }`
    : `  retry_join {\n    leader_api_addr = "${p.addr}"\n  }`;
  return `# ${n.id} of the vaultkeeper local stack (generated by test/stack/up.ts)
# No disable_mlock: OpenBao 2.x dropped mlock and warns "unknown or unsupported field".
ui           = false
log_level    = "info"
api_addr     = "${n.addr}"
cluster_addr = "${n.clusterAddr}"

listener "tcp" {
  address         = "${baoNodeHost(n.index)}:${PORTS.baoApi[n.index]}"
  cluster_address = "${baoNodeHost(n.index)}:${PORTS.baoCluster[n.index]}"
${tls}
}

storage "raft" {
  path    = "${n.dataDir}"
  node_id = "${n.id}"
  # 1 = the tightest Raft timings (1 s heartbeat/election instead of 5 s): the setting
  # recommended for production, and it makes start-up and leader failover in tests quick.
  performance_multiplier = 1
  # Test-only: autopilot looks every 2 s instead of every 10 s whether a non-voter has been
  # stable for server_stabilization_time (10 s, left at its default) and can be promoted.
  autopilot_reconcile_interval = "2s"
  autopilot_update_interval    = "1s"
${peers.map(join_).join('\n')}
}

seal "awskms" {
  region     = "${aws.region}"
  access_key = "${aws.accessKeyId}"
  secret_key = "${aws.secretAccessKey}"
  kms_key_id = "${aws.unsealKey.alias}"
  endpoint   = "${aws.endpoint}"
}

# OpenBao only allows declarative audit devices (sys/audit refuses API creation). Same path on
# every node: only the active node handles (and so audits) requests. Secrets are HMAC'd.
audit "file" "file" {
  options {
    file_path = "${paths.baoAuditLog}"
  }
}
`;
}

async function startOpenBao(aws: StackInfo['aws']): Promise<StackInfo['openbao']> {
  const binary = realBaoBinary();
  const nodes = baoNodes();
  for (const n of nodes) {
    mkdirSync(n.dataDir, { recursive: true });
    writeFileSync(n.configFile, baoConfig(n, nodes, aws));
    startDetached(n.id, binary, ['server', `-config=${n.configFile}`]);
  }
  const [first] = nodes as [BaoNode, ...BaoNode[]];
  const health = async (n: BaoNode) => (await baoApi(n.addr, 'GET', 'sys/health', { timeoutMs: 2_000 })).status;
  await waitFor(`${first.id} to listen`, 30_000, async () => (await health(first)) === 501);

  const init = await baoOk(first.addr, 'PUT', 'sys/init', { body: { recovery_shares: 1, recovery_threshold: 1 } });
  mkdirSync(paths.secrets, { recursive: true, mode: 0o700 });
  const rootTokenFile = join(paths.secrets, 'root-token');
  const recoveryKeyFile = join(paths.secrets, 'recovery-key');
  writeSecret(join(paths.secrets, 'init.json'), JSON.stringify(init, null, 2) + '\n');
  writeSecret(rootTokenFile, init.root_token);
  writeSecret(recoveryKeyFile, init.recovery_keys_base64[0]);
  await waitFor(`${first.id} to be active`, 60_000, async () => (await health(first)) === 200);
  log(`OpenBao ${first.id} initialised (recovery shares 1/1) and active`);

  const rest = nodes.slice(1);
  await waitFor('the other nodes to join and unseal', 90_000, async () => (await Promise.all(rest.map(health))).every((c) => c === 429));
  log('OpenBao nodes 2 and 3 joined and auto-unsealed');
  const services = await startServices(nodes);
  return {
    binary,
    // Admin calls of the tests and scripts go to the active node, through the active-only Service.
    addr: services.activeAddr,
    ...services,
    tls: BAO_TLS ? { caFile: join(paths.pki, 'ca.crt'), serverName: BAO_SERVICE_NAME } : null,
    nodes,
    rootToken: init.root_token,
    rootTokenFile,
    recoveryKey: init.recovery_keys_base64[0],
    recoveryKeyFile,
    auditLog: paths.baoAuditLog,
  };
}

/** The Services in front of the nodes (test/stack/forwarder.ts), as vault-helm creates them. */
async function startServices(nodes: BaoNode[]): Promise<{ serviceAddr: string; activeAddr: string }> {
  const scheme = BAO_TLS ? 'https' : 'http';
  const cfg = {
    services: [
      { name: 'vault', host: HOST, port: PORTS.baoService, select: 'unsealed' },
      { name: 'vault-active', host: HOST, port: PORTS.baoActive, select: 'active' },
    ],
    nodes: nodes.map((n) => n.addr),
    ...(BAO_TLS ? { caFile: join(paths.pki, 'ca.crt'), serverName: BAO_SERVICE_NAME } : {}),
  };
  const cfgFile = join(STATE_DIR, 'forwarder.json');
  writeFileSync(cfgFile, JSON.stringify(cfg, null, 2) + '\n');
  startDetached('bao-services', process.execPath, ['--no-warnings', join(REPO_ROOT, 'test/stack/forwarder.ts'), cfgFile]);
  const serviceAddr = `${scheme}://${HOST}:${PORTS.baoService}`;
  const activeAddr = `${scheme}://${HOST}:${PORTS.baoActive}`;
  await waitFor('the vault and vault-active Services', 30_000, async () =>
    (await baoApi(activeAddr, 'GET', 'sys/health', { timeoutMs: 2_000 })).status === 200 &&
    [200, 429].includes((await baoApi(serviceAddr, 'GET', 'sys/health', { timeoutMs: 2_000 })).status));
  log(`Services up: vault ${serviceAddr} (every unsealed node), vault-active ${activeAddr}`);
  return { serviceAddr, activeAddr };
}

async function waitForAutopilot(bao: StackInfo['openbao']): Promise<void> {
  await waitFor('autopilot to report a healthy 3-voter cluster', 120_000, async () => {
    const res = await baoApi(bao.addr, 'GET', 'sys/storage/raft/autopilot/state', { token: bao.rootToken });
    const state = res.body?.data;
    return state?.healthy === true && (state.voters ?? []).length === 3;
  }, 500);
  log('OpenBao autopilot: healthy, 3 voters');
}

/** Mounts, kubernetes auth, and every policy and role under policies/. */
async function bootstrapOpenBao(bao: StackInfo['openbao'], kube: StackInfo['kube'], set: PolicySet): Promise<void> {
  const { addr, rootToken: token } = bao;
  await baoOk(addr, 'POST', 'sys/mounts/secret', { token, body: { type: 'kv', options: { version: '2' } } });
  await baoOk(addr, 'POST', 'sys/auth/kubernetes', { token, body: { type: 'kubernetes' } });
  await baoOk(addr, 'POST', 'auth/kubernetes/config', {
    token,
    body: {
      kubernetes_host: kube.server,
      kubernetes_ca_cert: readFileSync(kube.caFile, 'utf8'),
      token_reviewer_jwt: kube.reviewer.token,
      disable_local_ca_jwt: true, // OpenBao does not run in a pod here
    },
  });
  await applyPolicies(addr, token, set);
  log(`OpenBao bootstrapped: kv-v2 at secret/, kubernetes auth, ${set.policies.length} policies, ` +
    `${set.kubernetesRoles.length} kubernetes roles, ${set.tokenRoles.length} token roles`);
}

/**
 * Right after bootstrap, a standby refused Kubernetes logins ("permission denied", nothing in its
 * log) for a few seconds while the active node accepted them; jobs log in through the Service,
 * i.e. through any node, so the stack is up only once every node accepts one.
 */
async function waitForLoginOnEveryNode(bao: StackInfo['openbao'], kube: StackInfo['kube'], set: PolicySet): Promise<void> {
  const role = set.kubernetesRoles[0];
  if (!role) return;
  const sa = role.body.bound_service_account_names[0]!;
  const target: KubeTarget = { server: kube.server, ca: readFileSync(kube.caFile, 'utf8'), token: kube.adminToken };
  const minted = await kubeApi(target, 'POST', `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['vault'], expirationSeconds: 600 },
  });
  const jwt = minted.body?.status?.token as string;
  const t = Date.now();
  await waitFor('a Kubernetes login through every OpenBao node', 60_000, async () => {
    const results = await Promise.all(bao.nodes.map((n) => baoApi(n.addr, 'POST', 'auth/kubernetes/login', { body: { role: role.name, jwt } })));
    for (const r of results) {
      const token = r.body?.auth?.client_token as string | undefined;
      if (token) await baoApi(bao.addr, 'POST', 'auth/token/revoke-self', { token });
    }
    return results.every((r) => r.status === 200);
  }, 250);
  log(`every OpenBao node accepts a Kubernetes login (${((Date.now() - t) / 1000).toFixed(1)}s after bootstrap)`);
}

// ---- etcd + kube-apiserver -----------------------------------------------------------

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: paths.pki, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A CA, the apiserver's serving cert for 127.0.0.1/localhost, OpenBao's serving cert (the Service
 * names, not the nodes' addresses: BAO_CERT_SANS), and the service-account signing key pair.
 */
function makePki(): void {
  mkdirSync(paths.pki, { recursive: true, mode: 0o700 });
  const ec = ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out'];
  openssl([...ec, 'ca.key']);
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=vaultkeeper-stack-ca', '-days', '30', '-out', 'ca.crt']);
  openssl([...ec, 'apiserver.key']);
  openssl(['req', '-new', '-key', 'apiserver.key', '-subj', '/CN=127.0.0.1', '-out', 'apiserver.csr']);
  writeFileSync(join(paths.pki, 'apiserver.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  openssl(['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30',
    '-extfile', 'apiserver.ext', '-out', 'apiserver.crt']);
  openssl([...ec, 'bao.key']);
  openssl(['req', '-new', '-key', 'bao.key', '-subj', `/CN=${BAO_SERVICE_NAME}`, '-out', 'bao.csr']);
  writeFileSync(join(paths.pki, 'bao.ext'),
    `subjectAltName=${BAO_CERT_SANS.join(',')}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`);
  openssl(['x509', '-req', '-in', 'bao.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30',
    '-extfile', 'bao.ext', '-out', 'bao.crt']);
  chmodSync(join(paths.pki, 'bao.key'), 0o644); // read by the bao processes, which run as this user anyway
  openssl([...ec, 'sa.key']);
  openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

function kubeconfigYaml(server: string, caFile: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
  - name: vaultkeeper-stack
    cluster:
      server: ${server}
      certificate-authority: ${caFile}
users:
  - name: vaultkeeper-admin
    user:
      token: ${token}
contexts:
  - name: vaultkeeper-stack
    context:
      cluster: vaultkeeper-stack
      user: vaultkeeper-admin
      namespace: ${NAMESPACE}
current-context: vaultkeeper-stack
`;
}

/** Namespace, one ServiceAccount per job (from the kubernetes roles under policies/), and the TokenReview SA. */
function kubeManifest(serviceAccounts: string[]): string {
  const sa = (name: string) => `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ${name}\n  namespace: ${NAMESPACE}\n`;
  return [
    `apiVersion: v1
kind: Namespace
metadata:
  name: ${NAMESPACE}
  labels:
    pod-security.kubernetes.io/enforce: restricted
`,
    ...serviceAccounts.map(sa),
    sa(REVIEWER_SA),
    `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ${REVIEWER_SA}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:auth-delegator
subjects:
  - kind: ServiceAccount
    name: ${REVIEWER_SA}
    namespace: ${NAMESPACE}
`,
  ].join('---\n');
}

async function startKubernetes(set: PolicySet): Promise<{ kube: StackInfo['kube']; etcd: StackInfo['etcd'] }> {
  const etcdEndpoint = `http://${HOST}:${PORTS.etcdClient}`;
  const peer = `http://${HOST}:${PORTS.etcdPeer}`;
  startDetached('etcd', which('etcd'), [
    '--name=vaultkeeper', `--data-dir=${paths.etcdData}`,
    `--listen-client-urls=${etcdEndpoint}`, `--advertise-client-urls=${etcdEndpoint}`,
    `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=vaultkeeper=${peer}`,
    '--unsafe-no-fsync', // throwaway test data: no fsync makes the apiserver's first writes fast
    '--log-level=warn',
  ]);

  const adminToken = execFileSync('openssl', ['rand', '-hex', '24'], { encoding: 'utf8' }).trim();
  const tokenFile = join(paths.pki, 'tokens.csv');
  writeSecret(tokenFile, `${adminToken},vaultkeeper-admin,vaultkeeper-admin,"system:masters"\n`);
  const pki = (f: string) => join(paths.pki, f);
  const server = `https://${HOST}:${PORTS.kubeApiserver}`;
  startDetached('kube-apiserver', which('kube-apiserver'), [
    `--bind-address=${HOST}`, `--advertise-address=${HOST}`, `--secure-port=${PORTS.kubeApiserver}`,
    `--etcd-servers=${etcdEndpoint}`,
    // Compact etcd every 30 s instead of 5 min, so that a continue token turns "too old" (410
    // Gone) soon after start, as it does on any long-running cluster; the sweep's test needs it.
    '--etcd-compaction-interval=30s',
    `--tls-cert-file=${pki('apiserver.crt')}`, `--tls-private-key-file=${pki('apiserver.key')}`,
    `--cert-dir=${paths.pki}`,
    `--token-auth-file=${tokenFile}`,
    '--authorization-mode=RBAC',
    `--service-account-issuer=${SA_ISSUER}`,
    `--service-account-key-file=${pki('sa.pub')}`,
    `--service-account-signing-key-file=${pki('sa.key')}`,
    `--api-audiences=${API_AUDIENCES.join(',')}`,
    '--service-cluster-ip-range=10.96.0.0/24', // a config value only: nothing routes there
    // Admission: the default set, which includes PodSecurity and ServiceAccount.
    '--profiling=false',
  ]);
  const target: KubeTarget = { server, ca: readFileSync(pki('ca.crt'), 'utf8'), token: adminToken };
  await waitFor('kube-apiserver /readyz', 120_000, async () => (await kubeApi(target, 'GET', '/readyz')).status === 200, 500);
  log(`kube-apiserver ready on ${server}`);

  writeFileSync(paths.kubeconfig, kubeconfigYaml(server, pki('ca.crt'), adminToken), { mode: 0o600 });
  const serviceAccounts: Record<string, string> = {};
  for (const role of set.kubernetesRoles) {
    for (const sa of role.body.bound_service_account_names) serviceAccounts[role.name.replace(/^vaultkeeper-/, '')] = sa;
  }
  execFileSync('kubectl', ['--kubeconfig', paths.kubeconfig, 'apply', '-f', '-'], {
    input: kubeManifest(Object.values(serviceAccounts)),
    stdio: ['pipe', 'ignore', 'pipe'],
  });

  // Long-lived (30 days) token for OpenBao's TokenReview calls, minted by TokenRequest.
  const expirationSeconds = 30 * 24 * 3600;
  const res = await kubeApi(target, 'POST', `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${REVIEWER_SA}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds },
  });
  if (res.status !== 201) throw new Error(`TokenRequest for ${REVIEWER_SA} -> ${res.status}: ${JSON.stringify(res.body)}`);
  log(`kubernetes: namespace ${NAMESPACE}, ${Object.keys(serviceAccounts).length} job service accounts, ${REVIEWER_SA} (system:auth-delegator)`);
  return {
    etcd: { endpoint: etcdEndpoint },
    kube: {
      server,
      caFile: pki('ca.crt'),
      kubeconfig: paths.kubeconfig,
      adminToken,
      issuer: SA_ISSUER,
      apiAudiences: API_AUDIENCES,
      namespace: NAMESPACE,
      serviceAccounts,
      reviewer: { namespace: NAMESPACE, serviceAccount: REVIEWER_SA, token: res.body.status.token, expiresAt: res.body.status.expirationTimestamp },
    },
  };
}

// ---- Pushgateway, Authentik stand-in -------------------------------------------------

async function startPushgateway(): Promise<StackInfo['pushgateway']> {
  const url = `http://${HOST}:${PORTS.pushgateway}`;
  mkdirSync(join(STATE_DIR, 'pushgateway'), { recursive: true });
  startDetached('pushgateway', which('prometheus-pushgateway'), [
    `--web.listen-address=${HOST}:${PORTS.pushgateway}`,
    `--persistence.file=${paths.pushgatewayDb}`,
  ]);
  await waitFor('pushgateway', 30_000, async () => (await fetch(`${url}/-/ready`)).ok);
  log(`pushgateway up on ${url}`);
  return { url };
}

interface StandinModule {
  startAuthentikStandin(opts: { stateDir: string; port: number; logFile: string }): Promise<{ pid: number; url: string; apiToken: string }>;
  bootstrapAuthentikInVault(opts: { vaultAddr: string; vaultToken: string; standinUrl: string; apiToken: string; stateDir: string }): Promise<void>;
}

async function startAuthentik(bao: StackInfo['openbao']): Promise<StackInfo['authentik']> {
  const launcher = join(REPO_ROOT, 'test/authentik-standin/launch.ts');
  if (!existsSync(launcher)) {
    console.warn(`\n!!! WARNING: ${launcher} does not exist: the stack runs WITHOUT the Authentik stand-in (no OIDC). !!!\n`);
    return null;
  }
  const mod = (await import(pathToFileURL(launcher).href)) as StandinModule;
  mkdirSync(paths.authentik, { recursive: true });
  const standinLog = logFile('authentik-standin');
  const { pid, url, apiToken } = await mod.startAuthentikStandin({ stateDir: paths.authentik, port: PORTS.authentik, logFile: standinLog });
  adoptProcess('authentik-standin', pid, standinLog);
  await mod.bootstrapAuthentikInVault({ vaultAddr: bao.addr, vaultToken: bao.rootToken, standinUrl: url, apiToken, stateDir: paths.authentik });
  log(`Authentik stand-in up on ${url} and wired into OpenBao`);
  return { url, apiToken };
}

// ---- main ----------------------------------------------------------------------------

async function up(): Promise<void> {
  if (existsSync(paths.stackJson)) {
    const current = readStack();
    const problems = await stackProblems(current, { coreOnly: true });
    if (problems.length === 0) {
      const next = await startAddons(current, log);
      writeSecret(paths.stackJson, JSON.stringify(next, null, 2) + '\n');
      log(`the stack is already up and healthy (${STATE_DIR}); add-ons checked`);
      return;
    }
    log(`the stack is half up (${problems.join('; ')}): tearing it down and starting again`);
  }
  if (existsSync(STATE_DIR)) await teardown({ quiet: true });

  const ports = [PORTS.moto, PORTS.baoService, PORTS.baoActive, ...PORTS.baoApi, ...PORTS.baoCluster, PORTS.etcdClient, PORTS.etcdPeer, PORTS.kubeApiserver, PORTS.pushgateway, PORTS.authentik];
  const busy = (await Promise.all(ports.map(async (p) => ((await portInUse(p)) ? [p] : [])))).flat();
  if (busy.length) throw new Error(`ports already in use on ${HOST}: ${busy.join(', ')} (a stack from another VAULTKEEPER_STACK_DIR?)`);

  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  makePki();
  if (BAO_TLS) useBaoTls({ caFile: join(paths.pki, 'ca.crt'), serverName: BAO_SERVICE_NAME });
  const set = loadPolicies();
  const [[aws, openbao], k8s, pushgateway] = await Promise.all([
    startMoto().then(async (aws) => [aws, await startOpenBao(aws)] as const),
    startKubernetes(set),
    startPushgateway(),
  ]);
  await Promise.all([waitForAutopilot(openbao), bootstrapOpenBao(openbao, k8s.kube, set)]);
  await waitForLoginOnEveryNode(openbao, k8s.kube, set);
  const authentik = await startAuthentik(openbao);

  const core: StackInfo = {
    stateDir: STATE_DIR,
    createdAt: new Date().toISOString(),
    upSeconds: (Date.now() - t0) / 1000,
    openbao,
    aws,
    kube: k8s.kube,
    etcd: k8s.etcd,
    pushgateway,
    authentik,
  };
  // Written before the add-ons start, so that a failing add-on leaves a usable core on record.
  writeSecret(paths.stackJson, JSON.stringify(core, null, 2) + '\n');
  const stack = { ...(await startAddons(core, log)), upSeconds: (Date.now() - t0) / 1000 };
  writeSecret(paths.stackJson, JSON.stringify(stack, null, 2) + '\n');
  log(`stack is up in ${elapsed()}: state in ${STATE_DIR}; \`pnpm stack:env\` prints the environment`);
}

/** One `stack:up` at a time: a second one would take the first's half-built stack for a broken one. */
function takeLock(): () => void {
  const lock = `${STATE_DIR}.lock`;
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' });
  } catch {
    const holder = Number(readFileSync(lock, 'utf8'));
    if (holder && existsSync(`/proc/${holder}`)) throw new Error(`another stack:up (pid ${holder}) is running`);
    writeFileSync(lock, String(process.pid)); // stale lock of a killed run
  }
  return () => rmSync(lock, { force: true });
}

let failing = false;
async function fail(reason: string): Promise<void> {
  if (failing) return; // e.g. SIGINT, then the step it interrupted fails too
  failing = true;
  refuseNewProcesses();
  console.error(`\nstack:up failed after ${elapsed()}: ${reason}`);
  console.error(`logs are kept in ${paths.logs}; stopping what was started`);
  await stopAll(5_000);
  releaseLock();
  process.exit(1);
}

let releaseLock: () => void;
try {
  releaseLock = takeLock();
} catch (err) {
  console.error(`stack:up: ${(err as Error).message}`);
  process.exit(1);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void fail(`interrupted (${signal})`));
try {
  await up();
  releaseLock();
} catch (err) {
  await fail(err instanceof Error ? err.message : String(err));
}
