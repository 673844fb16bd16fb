/**
 * Checks a Raft snapshot while its bytes stream past, without holding it.
 *
 * What Vault/OpenBao sends for GET sys/storage/raft/snapshot is gzip(tar) of, in this order:
 *   meta.json           raft.SnapshotMeta as JSON (Index, Term, Configuration, Size of state.bin)
 *   state.bin           the FSM state
 *   SHA256SUMS          "<hex sha256>  <name>" for meta.json and state.bin
 *   SHA256SUMS.sealed   SHA256SUMS encrypted by the cluster's seal (so a restore can tell the
 *                       snapshot came from a cluster with the same seal)
 * The server answers 200 before it has written anything and sends no Content-Length, so a snapshot
 * that failed half-way through on the server, or was cut in transit, still arrives as a "successful"
 * 200 response with a short body. The official Go clients only check that SHA256SUMS.sealed was
 * seen. Here every member is hashed as it passes and checked against SHA256SUMS, the member set
 * must be exactly the expected one, the sealed manifest must be last and non-empty, and the gzip
 * and tar framing (header checksums, end-of-archive marker, gzip CRC and length) must be intact.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip, type Gunzip, type ZlibOptions } from 'node:zlib';

export const MEMBERS = ['meta.json', 'state.bin', 'SHA256SUMS', 'SHA256SUMS.sealed'] as const;
const SEALED = 'SHA256SUMS.sealed';
const SUMS = 'SHA256SUMS';
/** meta.json and SHA256SUMS are a few hundred bytes; anything bigger is not a Raft snapshot. */
const SMALL_MEMBER_LIMIT = 1024 * 1024;
const BLOCK = 512;

/** A snapshot that failed a check: `check` names which, `message` says what was found. */
export class SnapshotVerificationError extends Error {
  override readonly name = 'SnapshotVerificationError';
  constructor(
    readonly check: string,
    message: string,
  ) {
    super(message);
  }
}

export interface RaftMeta {
  /** Kept as decimal strings: Raft indexes are uint64. */
  index: string;
  term: string;
  /** Size of state.bin as recorded by the server, when present. */
  size?: number;
  version?: number;
}

export interface MemberReport {
  name: string;
  size: number;
  sha256: string;
}

export interface ArchiveReport {
  /** Bytes of the object as stored (the gzip stream). */
  bytes: number;
  /** SHA-256 of the object as stored, hex. */
  sha256: string;
  members: MemberReport[];
  meta: RaftMeta;
}

interface OpenMember {
  name: string;
  size: number;
  remaining: number;
  padding: number;
  hash: Hash;
  /** Collected content for the small members we parse. */
  content?: Buffer[];
}

/**
 * Minimal streaming reader of the tar subset Go's archive/tar writes: ustar headers, PAX extended
 * headers ('x', 'g') and GNU long names ('L'). Members are hashed as their data arrives.
 */
class TarReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private member: OpenMember | undefined;
  private skip = 0;
  private nextName: string | undefined;
  private nextSize: number | undefined;
  private extended: { kind: 'x' | 'g' | 'L'; remaining: number; padding: number; content: Buffer[] } | undefined;
  private zeroBlocks = 0;
  readonly members: MemberReport[] = [];
  readonly contents = new Map<string, Buffer>();
  ended = false;
  /** Called once meta.json has been read whole (it is the first member). */
  onMeta: ((raw: Buffer) => void) | undefined;

  write(chunk: Buffer): void {
    let buf = chunk;
    while (buf.length > 0) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length);
        this.skip -= n;
        buf = buf.subarray(n);
        continue;
      }
      if (this.member) {
        buf = this.feedMember(this.member, buf);
        continue;
      }
      if (this.extended) {
        buf = this.feedExtended(this.extended, buf);
        continue;
      }
      if (this.ended) {
        // Go's writer ends with two zero blocks and nothing else; zero padding is harmless.
        if (buf.some((b) => b !== 0)) throw new SnapshotVerificationError('tar-trailing-data', 'data after the end-of-archive marker');
        return;
      }
      const need = BLOCK - this.pendingBytes;
      const take = buf.subarray(0, need);
      this.pending.push(take);
      this.pendingBytes += take.length;
      buf = buf.subarray(take.length);
      if (this.pendingBytes === BLOCK) {
        const header = Buffer.concat(this.pending);
        this.pending = [];
        this.pendingBytes = 0;
        this.header(header);
      }
    }
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      this.zeroBlocks++;
      if (this.zeroBlocks === 2) this.ended = true;
      return;
    }
    if (this.zeroBlocks > 0) throw new SnapshotVerificationError('tar-framing', 'a lone zero block inside the archive');
    if (!checksumOk(block)) throw new SnapshotVerificationError('tar-header-checksum', `tar header #${this.members.length + 1} has a bad checksum`);
    const type = String.fromCharCode(block[156] ?? 0);
    const size = parseNumeric(block.subarray(124, 136));
    if (size === undefined) throw new SnapshotVerificationError('tar-framing', 'tar header with an unreadable size');
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'x' || type === 'g' || type === 'L') {
      if (size > SMALL_MEMBER_LIMIT) throw new SnapshotVerificationError('tar-framing', 'oversized tar extended header');
      this.extended = { kind: type, remaining: size, padding, content: [] };
      if (size === 0) this.finishExtended();
      return;
    }
    if (type !== '0' && type !== '\0') {
      throw new SnapshotVerificationError('unexpected-member', `unexpected tar entry of type '${type}' (a snapshot holds regular files only)`);
    }
    const ustarName = cString(block.subarray(0, 100));
    const prefix = block.subarray(257, 262).toString('latin1') === 'ustar' ? cString(block.subarray(345, 500)) : '';
    const name = this.nextName ?? (prefix ? `${prefix}/${ustarName}` : ustarName);
    const realSize = this.nextSize ?? size;
    this.nextName = undefined;
    this.nextSize = undefined;
    if (!(MEMBERS as readonly string[]).includes(name)) {
      throw new SnapshotVerificationError('unexpected-member', `unexpected member "${name.slice(0, 120)}" in the snapshot`);
    }
    // Vault writes meta.json first; the upload waits for it (the Raft index and term name the object).
    if (this.members.length === 0 && name !== 'meta.json') {
      throw new SnapshotVerificationError('member-order', `the snapshot starts with ${name.slice(0, 120)}, not meta.json`);
    }
    if (this.members.some((m) => m.name === name) || this.member?.name === name) {
      throw new SnapshotVerificationError('duplicate-member', `member ${name} appears twice`);
    }
    if (this.members.some((m) => m.name === SEALED)) {
      throw new SnapshotVerificationError('member-order', `member ${name} follows ${SEALED}, which must be last`);
    }
    if (name !== 'state.bin' && realSize > SMALL_MEMBER_LIMIT) {
      throw new SnapshotVerificationError('member-size', `${name} is ${realSize} bytes, far larger than it can be`);
    }
    const member: OpenMember = {
      name,
      size: realSize,
      remaining: realSize,
      padding: (BLOCK - (realSize % BLOCK)) % BLOCK,
      hash: createHash('sha256'),
      ...(name === 'meta.json' || name === SUMS ? { content: [] } : {}),
    };
    if (realSize === 0) this.finishMember(member);
    else this.member = member;
  }

  private feedMember(m: OpenMember, buf: Buffer): Buffer {
    const n = Math.min(m.remaining, buf.length);
    const part = buf.subarray(0, n);
    m.hash.update(part);
    m.content?.push(Buffer.from(part));
    m.remaining -= n;
    if (m.remaining === 0) this.finishMember(m);
    return buf.subarray(n);
  }

  private finishMember(m: OpenMember): void {
    this.member = undefined;
    this.skip = m.padding;
    this.members.push({ name: m.name, size: m.size, sha256: m.hash.digest('hex') });
    if (m.content) this.contents.set(m.name, Buffer.concat(m.content));
    if (m.name === 'meta.json') this.onMeta?.(this.contents.get(m.name)!);
  }

  private feedExtended(e: NonNullable<TarReader['extended']>, buf: Buffer): Buffer {
    const n = Math.min(e.remaining, buf.length);
    e.content.push(Buffer.from(buf.subarray(0, n)));
    e.remaining -= n;
    if (e.remaining === 0) this.finishExtended();
    return buf.subarray(n);
  }

  private finishExtended(): void {
    const e = this.extended!;
    this.extended = undefined;
    this.skip = e.padding;
    const body = Buffer.concat(e.content);
    if (e.kind === 'L') {
      this.nextName = cString(body);
      return;
    }
    if (e.kind === 'g') return;
    for (const [key, value] of parsePax(body)) {
      if (key === 'path') this.nextName = value;
      if (key === 'size') {
        if (!/^\d+$/.test(value)) throw new SnapshotVerificationError('tar-framing', 'PAX header with an unreadable size');
        this.nextSize = Number(value);
      }
    }
  }

  /** Called once the decompressed stream has ended. */
  finish(): void {
    if (this.member) {
      throw new SnapshotVerificationError('truncated', `the snapshot ends inside ${this.member.name} (${this.member.remaining} of ${this.member.size} bytes missing)`);
    }
    if (!this.ended) throw new SnapshotVerificationError('truncated', 'the snapshot ends without the tar end-of-archive marker');
  }
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.subarray(0, nul < 0 ? buf.length : nul).toString('utf8');
}

/** Octal (NUL/space terminated) or GNU base-256 (high bit set) numeric field. */
function parseNumeric(field: Buffer): number | undefined {
  if ((field[0] ?? 0) & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] ?? 0);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]*$/.test(text)) return undefined;
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(block: Buffer): boolean {
  const stored = parseNumeric(block.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  return stored === sum;
}

function parsePax(body: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    const len = space < 0 ? NaN : Number(body.subarray(pos, space).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || pos + len > body.length) {
      throw new SnapshotVerificationError('tar-framing', 'malformed PAX extended header');
    }
    const record = body.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.push([record.slice(0, eq), record.slice(eq + 1)]);
    pos += len;
  }
  return out;
}

/** Parses SHA256SUMS ("<64 hex>  <name>" per line, the format of sha256sum and Go's fmt "%x  %s\n"). */
export function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.replace(/\r$/, ''));
    if (!m) throw new SnapshotVerificationError('manifest-format', `SHA256SUMS has a malformed line (${JSON.stringify(line.slice(0, 80))})`);
    if (sums.has(m[2]!)) throw new SnapshotVerificationError('manifest-format', `SHA256SUMS lists ${m[2]} twice`);
    sums.set(m[2]!, m[1]!);
  }
  return sums;
}

export function parseMeta(raw: Buffer): RaftMeta {
  const text = raw.toString('utf8');
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new SnapshotVerificationError('meta', 'meta.json is not valid JSON');
  }
  // Exact digits from the text: JSON.parse would round a uint64 above 2^53.
  const index = /"Index"\s*:\s*(\d+)/.exec(text)?.[1];
  const term = /"Term"\s*:\s*(\d+)/.exec(text)?.[1];
  if (!index || !term || typeof parsed.Index !== 'number' || typeof parsed.Term !== 'number') {
    throw new SnapshotVerificationError('meta', 'meta.json lacks the Raft Index and Term');
  }
  return {
    index,
    term,
    ...(typeof parsed.Size === 'number' ? { size: parsed.Size } : {}),
    ...(typeof parsed.Version === 'number' ? { version: parsed.Version } : {}),
  };
}

/** The checks that need the whole archive, once it has been read. */
export function checkMembers(members: MemberReport[], contents: Map<string, Buffer>): RaftMeta {
  const names = members.map((m) => m.name);
  const missing = MEMBERS.filter((n) => !names.includes(n));
  if (missing.length) throw new SnapshotVerificationError('missing-member', `the snapshot lacks ${missing.join(', ')}`);
  if (names.at(-1) !== SEALED) throw new SnapshotVerificationError('member-order', `${SEALED} is not the last member`);
  if (names.indexOf(SUMS) > names.indexOf(SEALED)) throw new SnapshotVerificationError('member-order', `${SUMS} comes after ${SEALED}`);
  const sealed = members.find((m) => m.name === SEALED)!;
  if (sealed.size === 0) throw new SnapshotVerificationError('sealed-manifest', `${SEALED} is empty`);

  const sums = parseSums((contents.get(SUMS) ?? Buffer.alloc(0)).toString('utf8'));
  for (const m of members) {
    if (m.name === SUMS || m.name === SEALED) continue;
    const want = sums.get(m.name);
    if (!want) throw new SnapshotVerificationError('manifest-incomplete', `SHA256SUMS does not list ${m.name}`);
    if (want !== m.sha256) {
      throw new SnapshotVerificationError('manifest-mismatch', `${m.name} has SHA-256 ${m.sha256} but SHA256SUMS says ${want}`);
    }
  }
  for (const listed of sums.keys()) {
    if (!members.some((m) => m.name === listed) || listed === SUMS || listed === SEALED) {
      throw new SnapshotVerificationError('manifest-extra', `SHA256SUMS lists ${listed}, which is not a checked member`);
    }
  }
  const meta = parseMeta(contents.get('meta.json') ?? Buffer.alloc(0));
  const state = members.find((m) => m.name === 'state.bin')!;
  if (meta.size !== undefined && meta.size !== state.size) {
    throw new SnapshotVerificationError('meta', `meta.json says state.bin is ${meta.size} bytes, the archive holds ${state.size}`);
  }
  return meta;
}

/**
 * Inflate runs on the libuv threadpool, one trip per chunk written to it. Network chunks (16-64
 * KiB) are gathered into 1 MiB batches, inflate writes 256 KiB at a time, and up to 2 MiB may wait
 * for it: fewer thread trips and fewer, larger buffers for V8 to account for and collect. Measured
 * on the local stack (docs/raft-snapshot.md): a 144 MiB snapshot ~10% faster than 256 KiB / 64 KiB
 * / 1 MiB, which was itself 30% faster than a trip per network chunk; the streaming path's peak RSS
 * stays flat at ~136 MiB up to 1 GiB. Node hands zlib options on to the Transform constructor,
 * which takes highWaterMark; @types/node's ZlibOptions does not list it.
 */
const INFLATE_BATCH = 1024 * 1024;
const GUNZIP_OPTIONS: ZlibOptions & { highWaterMark: number } = { chunkSize: 256 * 1024, highWaterMark: 2 * 1024 * 1024 };

/**
 * A pass-through stream: what goes in comes out unchanged (to the S3 upload), while a side branch
 * gunzips and checks it. It fails (and so fails the upload before it can complete) when a check
 * fails; it ends only after every check has passed.
 */
export class ArchiveVerifier extends Transform {
  private readonly whole = createHash('sha256');
  private readonly gunzip: Gunzip = createGunzip(GUNZIP_OPTIONS);
  private readonly tar = new TarReader();
  private bytes = 0;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private failure: Error | undefined;
  private gunzipEnded: Promise<void>;
  private report: ArchiveReport | undefined;
  private metaKnown = false;
  /** Settles once meta.json has been read, or rejects when the stream fails first. */
  readonly meta: Promise<RaftMeta>;

  constructor() {
    super();
    this.meta = new Promise<RaftMeta>((resolve, reject) => {
      this.tar.onMeta = (raw) => {
        this.metaKnown = true;
        resolve(parseMeta(raw));
      };
      this.once('error', reject);
      this.once('end', () => reject(new SnapshotVerificationError('missing-member', 'the snapshot lacks meta.json')));
    });
    this.meta.catch(() => undefined);
    this.gunzipEnded = new Promise((resolve, reject) => {
      this.gunzip.on('end', resolve);
      this.gunzip.on('error', (err: NodeJS.ErrnoException) => {
        const e = this.failure ?? new SnapshotVerificationError(err.code === 'Z_BUF_ERROR' ? 'truncated' : 'gzip', `the gzip stream is damaged: ${err.message}`);
        this.fail(e);
        reject(e);
      });
    });
    this.gunzipEnded.catch(() => undefined);
    this.gunzip.on('data', (chunk: Buffer) => {
      if (this.failure) return;
      try {
        this.tar.write(chunk);
      } catch (err) {
        this.fail(err as Error);
      }
    });
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.gunzip.destroy();
    this.destroy(err);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.failure) return callback(this.failure);
    this.whole.update(chunk);
    this.bytes += chunk.length;
    this.push(chunk);
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    // Until meta.json is read every chunk goes on at once: the reader waits for it before it reads.
    if (this.metaKnown && this.batchBytes < INFLATE_BATCH) return callback();
    this.inflateBatch(callback);
  }

  /** Hands what has gathered to inflate in one write: one threadpool trip per batch, not per chunk. */
  private inflateBatch(callback: (err?: Error | null) => void): void {
    const batch = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    if (this.gunzip.write(batch)) callback();
    else this.gunzip.once('drain', () => callback(this.failure));
  }

  override _flush(callback: TransformCallback): void {
    if (this.failure) return callback(this.failure);
    if (this.bytes === 0) return callback(new SnapshotVerificationError('empty', 'the snapshot response had an empty body'));
    if (this.batchBytes > 0) {
      const rest = Buffer.concat(this.batch, this.batchBytes);
      this.batch = [];
      this.batchBytes = 0;
      this.gunzip.end(rest);
    } else this.gunzip.end();
    this.gunzipEnded.then(
      () => {
        try {
          this.tar.finish();
          const meta = checkMembers(this.tar.members, this.tar.contents);
          this.report = { bytes: this.bytes, sha256: this.whole.digest('hex'), members: this.tar.members, meta };
          callback();
        } catch (err) {
          this.failure = err as Error;
          callback(err as Error);
        }
      },
      (err: Error) => callback(this.failure ?? err),
    );
  }

  /** The verified facts, available once the stream has ended without error. */
  result(): ArchiveReport {
    if (!this.report) throw new Error('the archive has not been verified (stream not finished or failed)');
    return this.report;
  }
}
