// Builds archives shaped like a Raft snapshot (gzip of a ustar tar with meta.json, state.bin,
// SHA256SUMS, SHA256SUMS.sealed, as Go's archive/tar writes them), streamed so that the bench can
// make a 1 GiB one without holding it. Variants damage it in the ways the verifier must catch.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';

export function tarHeader(name: string, size: number, type = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000600\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  h.write(Math.floor(Date.now() / 1000).toString(8).padStart(11, '0') + '\0', 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(type, 156, 'latin1');
  h.write('ustar\0' + '00', 257, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

const pad = (size: number) => Buffer.alloc((512 - (size % 512)) % 512);

export interface SyntheticOptions {
  /** Size of state.bin; its content is pseudo-random (incompressible, like encrypted Vault data). */
  stateBytes: number;
  index?: number;
  term?: number;
  /** Ways to damage it. */
  variant?: 'ok' | 'bad-state-hash' | 'no-sealed' | 'empty-sealed' | 'extra-member' | 'sums-missing-meta' | 'sealed-not-last' | 'no-end-marker' | 'meta-not-first';
  gzipLevel?: number;
}

/** The decompressed tar as a stream of chunks. state.bin is generated twice (hash first, then content) from one seed. */
export function syntheticTar(opts: SyntheticOptions): Readable {
  const variant = opts.variant ?? 'ok';
  const seed = randomBytes(1 << 20);
  const stateChunks = function* (): Generator<Buffer> {
    let left = opts.stateBytes;
    let i = 0;
    while (left > 0) {
      const n = Math.min(left, seed.length);
      // Each MiB differs (first bytes carry a counter) so the data does not compress.
      const chunk = Buffer.from(seed.subarray(0, n));
      chunk.writeUInt32BE(i++ >>> 0, 0);
      yield chunk;
      left -= n;
    }
  };
  const stateHash = createHash('sha256');
  for (const c of stateChunks()) stateHash.update(c);
  const meta = Buffer.from(
    JSON.stringify({
      Version: 1,
      ID: 'bolt-snapshot',
      Index: opts.index ?? 4242,
      Term: opts.term ?? 7,
      Peers: null,
      Configuration: { Servers: [{ Suffrage: 0, ID: 'node-1', Address: '127.0.0.1:8201' }] },
      ConfigurationIndex: 1,
      Size: opts.stateBytes,
    }),
  );
  const metaHash = createHash('sha256').update(meta).digest('hex');
  const stateSum = variant === 'bad-state-hash' ? '0'.repeat(64) : stateHash.digest('hex');
  const sums = Buffer.from(`${stateSum}  state.bin\n` + (variant === 'sums-missing-meta' ? '' : `${metaHash}  meta.json\n`));
  const sealed = variant === 'empty-sealed' ? Buffer.alloc(0) : randomBytes(185);

  function* parts(): Generator<Buffer> {
    const file = (name: string, body: Buffer) => [tarHeader(name, body.length), body, pad(body.length)];
    if (variant !== 'meta-not-first') yield* file('meta.json', meta);
    yield tarHeader('state.bin', opts.stateBytes);
    yield* stateChunks();
    yield pad(opts.stateBytes);
    if (variant === 'meta-not-first') yield* file('meta.json', meta);
    if (variant === 'sealed-not-last') {
      yield* file('SHA256SUMS.sealed', sealed);
      yield* file('SHA256SUMS', sums);
    } else {
      yield* file('SHA256SUMS', sums);
      if (variant !== 'no-sealed') yield* file('SHA256SUMS.sealed', sealed);
    }
    if (variant === 'extra-member') yield* file('notes.txt', Buffer.from('hello'));
    if (variant !== 'no-end-marker') yield Buffer.alloc(1024);
  }
  return Readable.from(parts(), { objectMode: false });
}

/** The snapshot as it travels: gzip of the tar. */
export function syntheticSnapshot(opts: SyntheticOptions): Readable {
  return syntheticTar(opts).pipe(createGzip({ level: opts.gzipLevel ?? 1 }));
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
