// The stack's Kubernetes Services in front of the OpenBao nodes: plain TCP forwarding (TLS passes
// through untouched, so the client talks to the node itself), choosing among the nodes that a
// readiness check would admit, as kube-proxy does with a Service's ready endpoints:
//   service: every unsealed node (vault-helm's `vault` Service with its readiness probe)
//   active:  the active node only (vault-helm's `vault-active`, selected by the vault-active label)
// With no ready node a Service stops accepting connections (ECONNREFUSED), as kube-proxy rejects
// connections to a Service without endpoints.
//
// Run by test/stack/up.ts as its own process (node strips the types):
//   node forwarder.ts <config.json>
// config: { services: [{ name, host, port, select: 'unsealed' | 'active' }], nodes: [url...], caFile?, serverName? }
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { checkServerIdentity } from 'node:tls';

interface ServiceSpec {
  name: string;
  host: string;
  port: number;
  select: 'unsealed' | 'active';
}
interface ForwarderConfig {
  services: ServiceSpec[];
  nodes: string[];
  caFile?: string;
  serverName?: string;
}

const config = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as ForwarderConfig;
const ca = config.caFile ? readFileSync(config.caFile, 'utf8') : undefined;
const agent = new Agent({
  keepAlive: true,
  ...(ca ? { ca } : {}),
  ...(config.serverName ? { checkServerIdentity: (_h: string, cert) => checkServerIdentity(config.serverName!, cert) } : {}),
});
const log = (msg: string) => console.log(`${new Date().toISOString()} ${msg}`);

/** sys/health status of a node (200 active, 429 standby, 503 sealed, 501 uninitialised), 0 when it does not answer. */
function health(node: string): Promise<number> {
  return new Promise((resolve) => {
    const url = new URL('/v1/sys/health', node);
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      ...(url.protocol === 'https:' ? { agent } : {}),
      timeout: 1_000,
    }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

const ready = new Map<string, string[]>(config.services.map((s) => [s.name, []]));
const turn = new Map<string, number>();

function pick(service: ServiceSpec): URL | undefined {
  const nodes = ready.get(service.name) ?? [];
  if (!nodes.length) return undefined;
  const i = (turn.get(service.name) ?? 0) % nodes.length;
  turn.set(service.name, i + 1);
  return new URL(nodes[i]!);
}

function forward(service: ServiceSpec, client: Socket): void {
  const target = pick(service);
  if (!target) return void client.destroy();
  const upstream = connect({ host: target.hostname, port: Number(target.port) });
  const close = () => (client.destroy(), upstream.destroy());
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  client.pipe(upstream).pipe(client);
}

const servers = new Map<string, Server>();
function setListening(service: ServiceSpec, on: boolean): void {
  const current = servers.get(service.name);
  if (on && !current) {
    const server = createServer((sock) => forward(service, sock));
    server.on('error', (err) => log(`${service.name}: ${err.message}`));
    server.listen(service.port, service.host);
    servers.set(service.name, server);
  } else if (!on && current) {
    current.close(); // open connections stay; new ones are refused
    servers.delete(service.name);
  }
}

async function refresh(): Promise<void> {
  const codes = await Promise.all(config.nodes.map(health));
  for (const service of config.services) {
    const wanted = service.select === 'active' ? [200] : [200, 429, 473];
    const nodes = config.nodes.filter((_, i) => wanted.includes(codes[i]!));
    if (nodes.join() !== (ready.get(service.name) ?? []).join()) log(`${service.name} -> [${nodes.join(', ')}]`);
    ready.set(service.name, nodes);
    setListening(service, nodes.length > 0);
  }
}

for (;;) {
  await refresh();
  await new Promise((r) => setTimeout(r, 250));
}
