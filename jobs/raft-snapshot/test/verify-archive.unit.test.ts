import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ArchiveVerifier, SnapshotVerificationError, parseSums } from '../src/verify-archive.ts';
import { collect, syntheticSnapshot, type SyntheticOptions } from './synthetic-snapshot.ts';

async function verify(bytes: Buffer, chunkSize = 4096) {
  const verifier = new ArchiveVerifier();
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    verifier,
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return { report: verifier.result(), passed: Buffer.concat(out) };
}

async function failure(bytes: Buffer): Promise<SnapshotVerificationError> {
  try {
    await verify(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(SnapshotVerificationError);
    return err as SnapshotVerificationError;
  }
  throw new Error('verification passed but should have failed');
}

const make = (o: Partial<SyntheticOptions> = {}) => collect(syntheticSnapshot({ stateBytes: 300_000, ...o }));

describe('ArchiveVerifier', () => {
  it('passes a well-formed snapshot through unchanged and reports its facts', async () => {
    const bytes = await make({ index: 123456789012, term: 42 });
    const { report, passed } = await verify(bytes, 777);
    expect(passed.equals(bytes)).toBe(true);
    expect(report.bytes).toBe(bytes.length);
    expect(report.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(report.meta).toMatchObject({ index: '123456789012', term: '42', size: 300_000 });
    expect(report.members.map((m) => m.name)).toEqual(['meta.json', 'state.bin', 'SHA256SUMS', 'SHA256SUMS.sealed']);
  });

  it('gives the Raft index and term as soon as meta.json has passed, before the rest is read', async () => {
    const bytes = await make({ index: 99, term: 3, stateBytes: 2_000_000 });
    const verifier = new ArchiveVerifier();
    // Only the first 4 KiB arrive; nobody reads the output (as before the upload starts).
    verifier.write(bytes.subarray(0, 4096));
    await expect(verifier.meta).resolves.toMatchObject({ index: '99', term: '3' });
    verifier.destroy();
  });

  it('the meta promise fails with the stream when meta.json never comes', async () => {
    const verifier = new ArchiveVerifier();
    const meta = verifier.meta;
    verifier.on('error', () => undefined);
    verifier.end(gzipSync(Buffer.alloc(2048)));
    verifier.resume();
    await expect(meta).rejects.toBeInstanceOf(SnapshotVerificationError);
  });

  it('checks the same way whatever the size of the chunks the network delivers', async () => {
    const bytes = await make({ stateBytes: 1_500_000 });
    for (const size of [97, 511, 16 * 1024, 300_000, bytes.length]) {
      const { report, passed } = await verify(bytes, size);
      expect(passed.equals(bytes), `chunk ${size}`).toBe(true);
      expect(report.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    expect((await failure(await make({ variant: 'bad-state-hash', stateBytes: 1_500_000 }))).check).toBe('manifest-mismatch');
  });

  it.each([
    ['bad-state-hash', 'manifest-mismatch'],
    ['no-sealed', 'missing-member'],
    ['empty-sealed', 'sealed-manifest'],
    ['extra-member', 'unexpected-member'],
    ['sums-missing-meta', 'manifest-incomplete'],
    ['sealed-not-last', 'member-order'],
    ['no-end-marker', 'truncated'],
    ['meta-not-first', 'member-order'],
  ] as const)('rejects variant %s (%s)', async (variant, check) => {
    expect((await failure(await make({ variant }))).check).toBe(check);
  });

  it('rejects a body cut short, wherever it is cut', async () => {
    const bytes = await make();
    for (const at of [1, 10, 600, 5000, Math.floor(bytes.length / 2), bytes.length - 9, bytes.length - 1]) {
      const err = await failure(bytes.subarray(0, at));
      expect(['truncated', 'gzip']).toContain(err.check);
    }
  });

  it('rejects a flipped byte in the gzip stream', async () => {
    const bytes = await make();
    const bad = Buffer.from(bytes);
    bad[Math.floor(bad.length / 2)]! ^= 0x40;
    await failure(bad);
  });

  it('rejects a changed byte of state.bin even when the gzip framing is valid', async () => {
    const tar = gunzipSync(await make());
    tar[1024 + 512 + 100]! ^= 0x01; // inside state.bin (meta.json fits one block)
    expect((await failure(gzipSync(tar))).check).toBe('manifest-mismatch');
  });

  it('rejects a tampered tar header by its checksum', async () => {
    const tar = gunzipSync(await make());
    tar[1024 + 5]! ^= 0x01; // state.bin's header name
    expect((await failure(gzipSync(tar))).check).toBe('tar-header-checksum');
  });

  it('rejects an empty body and a body that is not gzip', async () => {
    expect((await failure(Buffer.alloc(0))).check).toBe('empty');
    expect((await failure(Buffer.from('{"errors":["permission denied"]}'))).check).toBe('gzip');
  });
});

describe('parseSums', () => {
  it('reads sha256sum lines and refuses anything else', () => {
    const a = 'a'.repeat(64);
    expect([...parseSums(`${a}  state.bin\n${a}  meta.json\n`)]).toEqual([
      ['state.bin', a],
      ['meta.json', a],
    ]);
    expect(() => parseSums('nothex  state.bin\n')).toThrow(SnapshotVerificationError);
    expect(() => parseSums(`${a}  x\n${a}  x\n`)).toThrow(/twice/);
  });
});
