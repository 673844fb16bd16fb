// The chart's values.schema.json, built from one source so that it cannot drift from the jobs:
// the chart's own keys are written out here, and each job's `config` section is converted from
// that job's zod config spec (jobs/<job>/src/job.ts). `pnpm helm:schema` writes the file; a test
// fails when the committed file differs from what this builds.
//
// Draft-07 on purpose: Helm up to 3.17 validates with a draft-07 library, 3.18+ with one that
// reads every draft; nothing here needs a later one.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from '@vaultkeeper/runtime';
import { POLICIES_DIR, REPO_ROOT } from '../stack/layout.ts';

type Json = Record<string, unknown>;

export const SCHEMA_FILE = join(REPO_ROOT, 'helm/vaultkeeper/values.schema.json');

/** The jobs the chart knows: one per folder under policies/ (the Vault side defines them). */
export function chartJobNames(): string[] {
  return readdirSync(POLICIES_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(POLICIES_DIR, e.name, 'kubernetes-role.json')))
    .map((e) => e.name)
    .sort();
}

// ---- pieces of Kubernetes objects, checked loosely (the apiserver checks them fully) ----------

const str = (extra: Json = {}): Json => ({ type: 'string', ...extra });
const bool: Json = { type: 'boolean' };
const int = (minimum = 0, extra: Json = {}): Json => ({ type: 'integer', minimum, ...extra });
const obj = (properties: Record<string, Json>, extra: Json = {}): Json => ({ type: 'object', additionalProperties: false, properties, ...extra });
const stringMap: Json = { type: 'object', additionalProperties: { type: 'string' } };
const anyObject: Json = { type: 'object' };
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const quantity: Json = { anyOf: [{ type: 'number', minimum: 0 }, str({ pattern: '^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$' })] };
const HTTP_URL = '^https?://[^\\s/]+';
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

const networkPeers: Json = { type: 'array', items: anyObject, description: 'NetworkPolicyPeers (podSelector, namespaceSelector, ipBlock)' };
const networkPorts: Json = {
  type: 'array',
  minItems: 1,
  items: obj({ port: { anyOf: [int(1, { maximum: 65535 }), str()] }, endPort: int(1, { maximum: 65535 }), protocol: { enum: ['TCP', 'UDP', 'SCTP'] } }, { required: ['port'] }),
};
const egressTargetDef = obj({ to: networkPeers, ports: networkPorts });
const egressTarget: Json = { $ref: '#/definitions/egressTarget' };
/** A chart-wide egress rule that can be turned off (enabled: false adds no rule). */
const optionalEgressTargetDef = obj({ enabled: bool, to: networkPeers, ports: networkPorts });
const optionalEgressTarget: Json = { $ref: '#/definitions/optionalEgressTarget' };

/**
 * Environment a job may be given. Secrets never come from the environment in a cluster, so a
 * secretKeyRef is refused here, and so are the variables that would carry one.
 */
const SECRET_VARIABLES = ['VAULT_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID'];
/**
 * Variables whose chart value the chart checks: set through extraEnv they would bypass that check
 * (a Pushgateway URL with credentials stored in the CronJob spec; the Bitwarden sink the image
 * cannot load). Refused with the reason as the name of a "missing" property, as Helm prints it
 * (JSON Schema has no error messages; see BITWARDEN_REFUSAL).
 */
const CHECKED_VARIABLES: Record<string, string> = {
  PUSHGATEWAY_URL: 'PUSHGATEWAY_URL in extraEnv: set metrics.pushgatewayUrl (the chart refuses credentials in it; they would be stored in the CronJob spec)',
  BREAKGLASS_SINK: 'BREAKGLASS_SINK in extraEnv: set jobs.emergency-token.config.sink.type (the chart refuses sinks the image cannot run)',
};
const envVarDef = obj(
  {
    name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', not: { enum: SECRET_VARIABLES } },
    value: str(),
    valueFrom: obj({ fieldRef: anyObject, resourceFieldRef: anyObject, configMapKeyRef: anyObject }, { minProperties: 1, maxProperties: 1 }),
  },
  {
    required: ['name'],
    description: 'an EnvVar without secrets: value, or valueFrom fieldRef/resourceFieldRef/configMapKeyRef (no secretKeyRef: secrets come from Vault)',
    allOf: Object.entries(CHECKED_VARIABLES).map(([name, reason]) => ({ if: { properties: { name: { const: name } }, required: ['name'] }, then: { required: [reason] } })),
  },
);

/** What jobDefaults holds and every job may override. */
const jobSettings: Record<string, Json> = {
  timeZone: str({ minLength: 1, description: 'IANA time zone of the schedule, e.g. Etc/UTC or Europe/Berlin' }),
  suspend: bool,
  concurrencyPolicy: { enum: ['Forbid', 'Allow', 'Replace'] },
  // The CronJob controller looks every 10 s; a shorter deadline can miss runs altogether.
  startingDeadlineSeconds: int(10),
  backoffLimit: int(0, { maximum: 10 }),
  activeDeadlineSeconds: int(1),
  ttlSecondsAfterFinished: int(0),
  successfulJobsHistoryLimit: int(0, { maximum: 100 }),
  failedJobsHistoryLimit: int(0, { maximum: 100 }),
  // The job gets this minus 5 s for its cleanup after SIGTERM.
  terminationGracePeriodSeconds: int(6, { maximum: 3600 }),
  resources: { $ref: '#/definitions/resources' },
  nodeSelector: stringMap,
  tolerations: { type: 'array', items: anyObject },
  affinity: anyObject,
  priorityClassName: str(),
  podAnnotations: stringMap,
  podLabels: stringMap,
  extraEnv: { type: 'array', items: { $ref: '#/definitions/envVar' } },
};

const CRON = '^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\\S+\\s+){4}\\S+)$';
const policyRuleDef = obj(
  { apiGroups: { type: 'array', items: str() }, resources: { type: 'array', items: str() }, resourceNames: { type: 'array', items: str() }, verbs: { type: 'array', minItems: 1, items: str() }, nonResourceURLs: { type: 'array', items: str() } },
  { required: ['verbs'] },
);

function jobSchema(config: { relaxed: Json; strict: Json }): Json {
  return {
    ...obj({
      enabled: bool,
      schedule: str({ pattern: CRON, description: 'five-field cron expression or @daily, @hourly ...' }),
      args: { type: 'array', items: str(), description: 'arguments after the job name: a command and options' },
      logLevel: { enum: LOG_LEVELS },
      serviceAccount: obj({ create: bool, name: str({ pattern: DNS_SUBDOMAIN, maxLength: 253 }), annotations: stringMap }),
      vault: obj({ role: str({ minLength: 1 }) }),
      kubernetesApiAccess: bool,
      rbac: obj({ create: bool, rules: { type: 'array', items: { $ref: '#/definitions/policyRule' } }, clusterRules: { type: 'array', items: { $ref: '#/definitions/policyRule' } }, remediationRules: { type: 'array', items: { $ref: '#/definitions/policyRule' } } }),
      config: config.relaxed,
      networkPolicy: obj({
        egress: { type: 'array', items: egressTarget },
        awsCredentials: { ...bool, description: 'also allow networkPolicy.eksPodIdentity and networkPolicy.imds (where the AWS SDK gets credentials)' },
        authentik: { ...bool, description: 'also allow networkPolicy.authentik (an in-cluster Authentik)' },
      }),
      ...jobSettings,
    }),
    // What the job cannot run without (e.g. the snapshot bucket) is required once it is enabled.
    if: { properties: { enabled: { const: true } }, required: ['enabled'] },
    then: { required: ['schedule'], properties: { config: config.strict } },
  };
}

// ---- each job's config section, from its zod spec -------------------------------------------------

const DURATION = '^\\s*(\\d+(\\.\\d+)?|\\d+(ms|s|m|h|d))\\s*$';
/** Keys of a job's config file that the chart writes itself from chart-wide values. */
const CHART_OWNED = ['vault', 'metrics', 'logLevel'];

interface JobModule {
  job: { name: string; config: { shape: z.ZodRawShape } };
}

async function loadJobConfig(name: string): Promise<z.ZodObject | undefined> {
  const file = join(REPO_ROOT, 'jobs', name, 'src', 'job.ts');
  if (!existsSync(file)) return undefined;
  const mod = (await import(pathToFileURL(file).href)) as JobModule;
  const shape: Record<string, z.core.$ZodType> = { ...mod.job.config.shape };
  for (const key of CHART_OWNED) delete shape[key];
  // From the runtime's common config: how long cleanup may take after SIGTERM (the chart
  // derives it from terminationGracePeriodSeconds unless it is set here).
  shape.shutdownGraceSeconds = z.union([z.number().min(1), z.string()]).optional();
  return z.strictObject(shape);
}

function toJsonSchema(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, {
    target: 'draft-07',
    io: 'input',
    reused: 'inline',
    unrepresentable: 'any',
    override: (ctx) => {
      // The runtime's field.seconds(): a number of seconds, or a string such as 30s, 5m, 26h, 7d.
      const def = (ctx.zodSchema as { _zod: { def: { type: string; in?: { _zod: { def: { type: string } } } } } })._zod.def;
      if (def.type === 'pipe' && def.in?._zod.def.type === 'transform' && ctx.jsonSchema.type === 'number') {
        const number = { ...ctx.jsonSchema };
        for (const k of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as Json)[k];
        Object.assign(ctx.jsonSchema, { anyOf: [number, { type: 'string', pattern: DURATION }] });
      }
    },
  }) as Json;
  delete json.$schema;
  return json;
}

/**
 * Config a job accepts but the image cannot run, refused by the chart until it can: the
 * emergency-token's Bitwarden sink needs @bitwarden/sdk-napi's native add-on, which the image's
 * bundles do not carry (every run would fail when loading it). JSON Schema has no error messages,
 * so the reason is the name of a property that is "missing" when sink.type is bitwarden: Helm
 * prints it next to the field.
 */
const BITWARDEN_REFUSAL =
  "sink.type bitwarden cannot run from this image: it lacks the native add-on of @bitwarden/sdk-napi (docs/operations.md, Reading a run); use sink.type s3";

function refuseWhatTheImageCannotRun(job: string, config: Json): Json {
  if (job !== 'emergency-token') return config;
  const sink = (config.properties as Record<string, Json> | undefined)?.sink;
  const type = (sink?.properties as Record<string, Json> | undefined)?.type;
  if (!sink || !type || !Array.isArray(type.enum)) throw new Error('emergency-token config: sink.type is not an enum any more; update refuseWhatTheImageCannotRun');
  type.enum = (type.enum as string[]).filter((t) => t !== 'bitwarden');
  sink.if = { properties: { type: { const: 'bitwarden' } }, required: ['type'] };
  sink.then = { required: [BITWARDEN_REFUSAL] };
  return config;
}

/** The same schema with nothing required: a disabled job's config may be partial or empty. */
function withoutRequired(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutRequired);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'required' && k !== 'default') out[k] = withoutRequired(v);
  return out;
}

function withoutDefaults(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutDefaults);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'default') out[k] = withoutDefaults(v);
  return out;
}

export async function buildValuesSchema(): Promise<{ schema: Json; jobsWithoutSpec: string[] }> {
  const jobs: Record<string, Json> = {};
  const jobsWithoutSpec: string[] = [];
  for (const name of chartJobNames()) {
    const spec = await loadJobConfig(name);
    if (!spec) {
      // The job's code is not there yet: any mapping, checked by the job itself when it starts.
      jobsWithoutSpec.push(name);
      jobs[name] = jobSchema({ relaxed: anyObject, strict: anyObject });
      continue;
    }
    const strict = refuseWhatTheImageCannotRun(name, withoutDefaults(toJsonSchema(spec)) as Json);
    jobs[name] = jobSchema({ relaxed: withoutRequired(strict) as Json, strict: { ...strict, description: `config of ${name}: see docs/${name}.md` } });
  }

  const anyJobEnabled = {
    properties: {
      jobs: { anyOf: Object.keys(jobs).map((name) => ({ properties: { [name]: { properties: { enabled: { const: true } }, required: ['enabled'] } }, required: [name] })) },
    },
    required: ['jobs'],
  };

  const schema: Json = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'vaultkeeper Helm chart values',
    $comment: 'Generated by `pnpm helm:schema` from test/helm/values-schema.ts and each job\'s config spec; do not edit by hand.',
    ...obj({
      image: obj(
        {
          repository: str({ minLength: 1 }),
          tag: str({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$|^$' }),
          digest: str({ pattern: '^(sha256:[a-f0-9]{64})?$' }),
          pullPolicy: { enum: ['IfNotPresent', 'Always', 'Never'] },
        },
        { required: ['repository'] },
      ),
      imagePullSecrets: { type: 'array', items: obj({ name: str({ minLength: 1 }) }, { required: ['name'] }) },
      nameOverride: str({ pattern: `${DNS_LABEL}|^$`, maxLength: 40 }),
      fullnameOverride: str({ pattern: `${DNS_LABEL}|^$`, maxLength: 36 }),
      commonLabels: stringMap,
      vault: obj({
        address: str({ pattern: `${HTTP_URL}|^$`, description: 'https://host:8200 (http:// only with allowInsecureHttp or to loopback)' }),
        fallbackAddresses: { type: 'array', items: str({ pattern: HTTP_URL }) },
        namespace: str(),
        allowInsecureHttp: bool,
        tlsServerName: str({ description: 'name every node certificate is checked against (VAULT_TLS_SERVER_NAME); empty: default' }),
        authMount: str({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$' }),
        tokenAudience: str({ minLength: 1 }),
        // The apiserver refuses a projected token shorter than 10 minutes.
        tokenExpirationSeconds: int(600, { maximum: 86400 }),
        caCert: obj({ configMap: str({ pattern: `${DNS_SUBDOMAIN}|^$` }), key: str({ minLength: 1 }) }),
      }),
      metrics: obj({ pushgatewayUrl: str({ pattern: `${HTTP_URL}|^$` }) }),
      logLevel: { enum: LOG_LEVELS },
      podSecurityContext: anyObject,
      securityContext: anyObject,
      jobDefaults: obj(jobSettings),
      networkPolicy: obj({
        enabled: bool,
        dns: egressTarget,
        vault: egressTarget,
        pushgateway: egressTarget,
        kubernetesApi: egressTarget,
        nodeLocalDns: optionalEgressTarget,
        eksPodIdentity: optionalEgressTarget,
        imds: optionalEgressTarget,
        authentik: optionalEgressTarget,
      }),
      jobs: obj(jobs, { description: `one entry per job: ${Object.keys(jobs).join(', ')}` }),
    }),
    definitions: {
      envVar: envVarDef,
      policyRule: policyRuleDef,
      egressTarget: egressTargetDef,
      optionalEgressTarget: optionalEgressTargetDef,
      resources: obj({ requests: { type: 'object', additionalProperties: quantity }, limits: { type: 'object', additionalProperties: quantity } }),
    },
    // As soon as one job runs, the jobs need to know where Vault is.
    if: anyJobEnabled,
    then: { properties: { vault: { properties: { address: { minLength: 1 } } } } },
  };
  return { schema, jobsWithoutSpec };
}

export function renderSchema(schema: Json): string {
  return JSON.stringify(schema, null, 2) + '\n';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { schema, jobsWithoutSpec } = await buildValuesSchema();
  writeFileSync(SCHEMA_FILE, renderSchema(schema));
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
  if (jobsWithoutSpec.length) process.stdout.write(`no config spec yet (any mapping accepted) for: ${jobsWithoutSpec.join(', ')}\n`);
}
