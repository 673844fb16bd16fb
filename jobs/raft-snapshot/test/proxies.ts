// Test-only proxies on loopback: one between the job and a Vault node that can slow down, damage
// or cut the snapshot body; one between the job and moto that can make S3 unreachable on demand;
// one in front of moto that refuses or disturbs chosen S3 operations as AWS would.
import { once } from 'node:events';
import http from 'node:http';
import { baoRequest } from '../../../test/stack/http.ts';
import net from 'node:net';
import { crc32, gunzipSync, gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { listenOnLoopback } from '../../../test/support/loopback.ts';

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
    this.url = await listenOnLoopback(this.server);
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
    const up = baoRequest(target, { method: req.method, headers }, (upRes) => {
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
    this.port = Number(new URL(await listenOnLoopback(this.server)).port);
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

/**
 * An HTTP proxy in front of the real moto S3 (path-style requests) that refuses or disturbs chosen
 * operations the way AWS would, and forwards everything else untouched. What moto cannot be told to
 * do (a bucket policy, a denied permission, a per-key DeleteObjects error), this does at the edge.
 */
export interface S3Faults {
  /** Answer these operations with 403 AccessDenied in AWS's XML error shape (an IAM policy without them). */
  deny?: Array<'ListMultipartUploads' | 'AbortMultipartUpload' | 'ListObjectVersions'>;
  /** Runs before a HeadObject is forwarded (e.g. the test deletes the object: a lifecycle rule between LIST and HEAD). */
  beforeHead?: (key: string) => Promise<void> | void;
  /** Keys a DeleteObjects must not delete: they come back as per-key AccessDenied errors; the rest is deleted by moto. */
  refuseDelete?: (key: string) => boolean;
  /** The usual bucket policy: deny s3:PutObject (PutObject, CreateMultipartUpload) without x-amz-server-side-encryption: aws:kms. */
  requireKms?: boolean;
  /** Forward these to moto (so they take effect), then reset the connection: the answer lost on the way back. */
  loseAnswer?: (op: string, key: string) => boolean;
}

export class S3FaultProxy {
  faults: S3Faults = {};
  /** What was refused, as `<Operation> <key>`, for the test to check that the fault happened. */
  readonly refused: string[] = [];
  /** Every PutObject/CreateMultipartUpload key with the SSE header it carried. */
  readonly writes: Array<{ op: string; key: string; sse: string | undefined }> = [];
  /** What reached moto and took effect, but whose answer was dropped, as `<Operation> <key>`. */
  readonly lost: string[] = [];
  private server: http.Server;
  url = '';

  constructor(private readonly upstream: string) {
    this.server = http.createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
  }

  async start(): Promise<this> {
    this.url = await listenOnLoopback(this.server);
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close').catch(() => undefined);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const [, , ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const q = url.searchParams;
    const op =
      req.method === 'GET' && q.has('uploads') && !key ? 'ListMultipartUploads'
      : req.method === 'GET' && q.has('versions') && !key ? 'ListObjectVersions'
      : req.method === 'DELETE' && q.has('uploadId') ? 'AbortMultipartUpload'
      : req.method === 'POST' && q.has('uploads') ? 'CreateMultipartUpload'
      : req.method === 'POST' && q.has('delete') && !key ? 'DeleteObjects'
      : req.method === 'PUT' && key && !q.has('uploadId') && !req.headers['x-amz-copy-source'] ? 'PutObject'
      : req.method === 'HEAD' && key ? 'HeadObject'
      : 'other';
    const body = await collectBody(req);
    const f = this.faults;
    if (op === 'PutObject' || op === 'CreateMultipartUpload') {
      const sse = req.headers['x-amz-server-side-encryption'] as string | undefined;
      this.writes.push({ op, key, sse });
      if (f.requireKms && sse !== 'aws:kms') return this.accessDenied(res, op, key);
    }
    if ((op === 'ListMultipartUploads' || op === 'AbortMultipartUpload' || op === 'ListObjectVersions') && f.deny?.includes(op)) return this.accessDenied(res, op, key);
    if (op === 'HeadObject' && f.beforeHead) await f.beforeHead(key);
    if (op === 'DeleteObjects' && f.refuseDelete) return this.deleteWithRefusals(req, res, body, f.refuseDelete);
    const up = await this.forward(req, body);
    if (f.loseAnswer?.(op, key)) {
      this.lost.push(`${op} ${key}`);
      res.socket?.destroy();
      return;
    }
    res.writeHead(up.status, up.headers);
    res.end(up.body);
  }

  private accessDenied(res: http.ServerResponse, op: string, key: string): void {
    this.refused.push(`${op} ${key}`);
    const id = randomId();
    res.writeHead(403, { 'content-type': 'application/xml', 'x-amz-request-id': id });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>${id}</RequestId><HostId>${id}</HostId></Error>`);
  }

  /** Sends moto the DeleteObjects without the refused keys, and adds a per-key error for each of them. */
  private async deleteWithRefusals(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, refuse: (key: string) => boolean): Promise<void> {
    const xml = body.toString('utf8');
    const refused: string[] = [];
    const kept = xml.replace(/<Object>\s*<Key>([^<]*)<\/Key>[\s\S]*?<\/Object>/g, (whole, k: string) => {
      const key = xmlUnescape(k);
      if (!refuse(key)) return whole;
      refused.push(key);
      return '';
    });
    let result: string;
    let status = 200;
    let headers: http.OutgoingHttpHeaders = { 'content-type': 'application/xml' };
    if (/<Object>/.test(kept)) {
      const up = await this.forward(req, Buffer.from(kept, 'utf8'));
      status = up.status;
      headers = up.headers;
      result = up.body.toString('utf8');
    } else {
      result = '<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>';
    }
    for (const key of refused) this.refused.push(`DeleteObjects ${key}`);
    const errors = refused.map((k) => `<Error><Key>${xmlEscape(k)}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`).join('');
    const out = status === 200 ? result.replace(/<\/DeleteResult>\s*$/, `${errors}</DeleteResult>`).replace(/<DeleteResult([^>]*)\/>\s*$/, `<DeleteResult$1>${errors}</DeleteResult>`) : result;
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    res.writeHead(status, headers);
    res.end(out);
  }

  private forward(req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.OutgoingHttpHeaders; body: Buffer }> {
    const target = new URL(req.url ?? '/', this.upstream);
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: target.host, 'content-length': String(body.length) };
    delete headers.expect;
    delete headers['transfer-encoding'];
    // A changed body needs its checksums changed too (moto checks them; it does not check signatures).
    if (headers['content-md5']) headers['content-md5'] = createHash('md5').update(body).digest('base64');
    if (headers['x-amz-checksum-crc32']) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(crc32(body));
      headers['x-amz-checksum-crc32'] = b.toString('base64');
    }
    if (headers['x-amz-content-sha256'] && /^[0-9a-f]{64}$/.test(String(headers['x-amz-content-sha256']))) {
      headers['x-amz-content-sha256'] = createHash('sha256').update(body).digest('hex');
    }
    return new Promise((resolve, reject) => {
      const up = http.request(target, { method: req.method, headers }, (upRes) => {
        collectBody(upRes).then((b) => {
          const h: http.OutgoingHttpHeaders = { ...upRes.headers };
          delete h['transfer-encoding'];
          delete h.connection;
          if (req.method !== 'HEAD') h['content-length'] = String(b.length);
          resolve({ status: upRes.statusCode ?? 502, headers: h, body: b });
        }, reject);
      });
      up.on('error', reject);
      up.end(body);
    });
  }
}

const randomId = () => createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 16).toUpperCase();
const xmlUnescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&#13;/g, '\r').replace(/&amp;/g, '&');
const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
