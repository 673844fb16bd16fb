// Test-only proxies on loopback: one between the job and a Vault node that can slow down, damage
// or cut the snapshot body; one between the job and moto that can make S3 unreachable on demand.
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';

export type TamperMode =
  | { kind: 'pass' }
  /** Forward the snapshot body at this many bytes per second. */
  | { kind: 'throttle'; bytesPerSecond: number }
  /** XOR one byte of the body at this offset (raw gzip stream). */
  | { kind: 'flip'; offset: number }
  /** End the body cleanly (a valid chunked ending) after this many bytes: a "successful" short 200. */
  | { kind: 'truncate'; after: number }
  /** Change one byte inside state.bin and re-gzip: gzip and tar framing stay valid, only SHA256SUMS can tell. */
  | { kind: 'tamper-state' }
  /** Remove SHA256SUMS.sealed and re-gzip: what the official clients would notice, and only that. */
  | { kind: 'drop-sealed' }
  /** Forward this many bytes, then go silent with the connection left open (a hung node or middlebox). */
  | { kind: 'stall'; after: number };

const SNAPSHOT_PATH = '/v1/sys/storage/raft/snapshot';

export class VaultTamperProxy {
  mode: TamperMode = { kind: 'pass' };
  /** Snapshot requests seen (each attempt of the job makes one). */
  snapshotRequests = 0;
  private server: http.Server;
  private readonly sockets = new Set<net.Socket>();
  url = '';

  constructor(public upstream: string) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.close();
    await once(this.server, 'close').catch(() => undefined);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const target = new URL(req.url ?? '/', this.upstream);
    const headers = { ...req.headers, host: target.host };
    const up = http.request(target, { method: req.method, headers }, (upRes) => {
      const isSnapshot = (req.url ?? '').startsWith(SNAPSHOT_PATH) && upRes.statusCode === 200;
      const isLeader = (req.url ?? '').startsWith('/v1/sys/leader');
      const outHeaders = { ...upRes.headers };
      delete outHeaders['content-length'];
      delete outHeaders['transfer-encoding'];
      delete outHeaders.connection;
      if (isSnapshot) this.snapshotRequests++;
      if (isLeader) {
        // Keep the job talking through the proxy: the active node's own address would bypass it.
        collectBody(upRes).then((body) => {
          const text = body.toString('utf8').split(JSON.stringify(this.upstream).slice(1, -1)).join(this.url);
          res.writeHead(upRes.statusCode ?? 502, outHeaders);
          res.end(text);
        }, () => res.destroy());
        return;
      }
      res.writeHead(upRes.statusCode ?? 502, outHeaders);
      if (!isSnapshot || this.mode.kind === 'pass') {
        upRes.pipe(res);
        upRes.on('error', () => res.destroy());
        upRes.on('aborted', () => res.destroy());
        return;
      }
      this.tamper(upRes, res);
    });
    // A dead upstream must look like a dead node to the job (connection reset), not like a 502.
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  }

  private tamper(upRes: http.IncomingMessage, res: http.ServerResponse): void {
    const mode = this.mode;
    let ended = false;
    // Once we have cut or stalled the body on purpose, the upstream's end is no longer the client's.
    const fail = () => !ended && res.socket?.destroy();
    upRes.on('aborted', fail);
    upRes.on('error', fail);
    if (mode.kind === 'tamper-state' || mode.kind === 'drop-sealed') {
      collectBody(upRes).then((body) => res.end(mode.kind === 'tamper-state' ? tamperState(body) : dropSealed(body)), fail);
      return;
    }
    let seen = 0;
    upRes.on('data', (chunk: Buffer) => {
      if (ended) return;
      let out = chunk;
      if (mode.kind === 'flip' && seen <= mode.offset && mode.offset < seen + chunk.length) {
        out = Buffer.from(chunk);
        out[mode.offset - seen]! ^= 0xff;
      }
      if (mode.kind === 'stall' && seen + chunk.length >= mode.after) {
        ended = true;
        res.write(chunk.subarray(0, mode.after - seen));
        upRes.destroy();
        return;
      }
      if (mode.kind === 'truncate' && seen + chunk.length >= mode.after) {
        ended = true;
        res.end(chunk.subarray(0, mode.after - seen));
        upRes.destroy();
        return;
      }
      seen += chunk.length;
      if (!res.write(out)) {
        upRes.pause();
        res.once('drain', () => upRes.resume());
      }
      if (mode.kind === 'throttle') {
        upRes.pause();
        setTimeout(() => upRes.resume(), (chunk.length / mode.bytesPerSecond) * 1000);
      }
    });
    upRes.on('end', () => !ended && res.end());
  }
}

function collectBody(stream: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
    stream.on('aborted', () => reject(new Error('aborted')));
  });
}

/** Offsets of the members of a tar (ustar, no extended headers: what Vault writes). */
export function tarMembers(tar: Buffer): Array<{ name: string; header: number; data: number; size: number }> {
  const out = [];
  let pos = 0;
  while (pos + 512 <= tar.length && tar[pos] !== 0) {
    const name = tar.subarray(pos, pos + 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(tar.subarray(pos + 124, pos + 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    out.push({ name, header: pos, data: pos + 512, size });
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export function tamperState(gz: Buffer): Buffer {
  const tar = gunzipSync(gz);
  const state = tarMembers(tar).find((m) => m.name === 'state.bin')!;
  tar[state.data + Math.floor(state.size / 2)]! ^= 0x01;
  return gzipSync(tar);
}

export function dropSealed(gz: Buffer): Buffer {
  const tar = gunzipSync(gz);
  const sealed = tarMembers(tar).find((m) => m.name === 'SHA256SUMS.sealed')!;
  return gzipSync(Buffer.concat([tar.subarray(0, sealed.header), Buffer.alloc(1024)]));
}

/**
 * A TCP proxy to moto that can be cut (existing connections reset, new ones refused), stalled
 * (connections stay open and accepted, but nothing moves either way: a black hole) and restored.
 */
export class CuttableTcpProxy {
  private server: net.Server;
  private readonly pairs = new Set<net.Socket>();
  private down = false;
  private stalled = false;
  port = 0;
  /** Bytes forwarded client→upstream since start (to tell that an upload is under way). */
  bytesUp = 0;

  constructor(private readonly upstreamPort: number) {
    this.server = net.createServer((client) => {
      if (this.down) return client.destroy();
      if (this.stalled) {
        // Accepted, then silence: reads nothing, answers nothing.
        client.pause();
        this.pairs.add(client);
        client.on('error', () => this.pairs.delete(client)).on('close', () => this.pairs.delete(client));
        return;
      }
      const upstream = net.connect(this.upstreamPort, '127.0.0.1');
      this.pairs.add(client);
      this.pairs.add(upstream);
      client.on('data', (d: Buffer) => (this.bytesUp += d.length));
      client.pipe(upstream).pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(client);
        this.pairs.delete(upstream);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  cut(): void {
    this.down = true;
    for (const s of this.pairs) s.destroy();
  }

  stall(): void {
    this.stalled = true;
    for (const sock of this.pairs) {
      sock.unpipe();
      sock.pause();
    }
  }

  /** Back to forwarding; connections cut or stalled before stay dead (they are reset now). */
  restore(): void {
    if (this.stalled) for (const sock of this.pairs) sock.destroy();
    this.down = false;
    this.stalled = false;
  }

  async stop(): Promise<void> {
    this.cut();
    this.server.close();
    await once(this.server, 'close').catch(() => undefined);
  }
}
