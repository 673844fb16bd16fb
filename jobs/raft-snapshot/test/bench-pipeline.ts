// Child process of test/bench/raft-snapshot.bench.ts, bundled with vk-bundle so that no TypeScript loader
// sits in the measured memory. Modes:
//   gen <bytes>           writes a synthetic snapshot with a state.bin of that size to stdout
//   synthetic-stdin       reads a snapshot from stdin (another process, as Vault is) through the
//                         job's own streaming path (ArchiveVerifier + lib-storage multipart upload,
//                         streamToS3) into moto, with the job's default part size and concurrency
//   upload-file <path>    the SDK half of the common recipe: upload a saved snapshot file
// Prints one JSON line: bytes, seconds, peak RSS (MiB) of this process.
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createLogger } from '@vaultkeeper/runtime';
import { streamToS3 } from '../src/s3-upload.ts';
import { syntheticSnapshot } from './synthetic-snapshot.ts';

const [mode, arg] = process.argv.slice(2);
const bucket = process.env.BENCH_BUCKET!;
const prefix = process.env.BENCH_PREFIX!;
const client = new S3Client({ forcePathStyle: true });
const log = createLogger({ job: 'bench', level: 'warn' });
const started = performance.now();
let bytes = 0;
const key = `${prefix}${mode}-${process.pid}.snap`;

if (mode === 'gen') {
  await pipeline(syntheticSnapshot({ stateBytes: Number(arg) }), process.stdout);
  process.exit(0);
} else if (mode === 'synthetic-stdin') {
  const body = process.stdin;
  const report = await streamToS3({
    client,
    s3: { bucket, prefix, region: 'us-east-1', forcePathStyle: true, sse: 'aws:kms', kmsKeyId: process.env.BENCH_KMS_KEY, partSizeMiB: Number(process.env.BENCH_PART_MIB ?? 8), concurrency: Number(process.env.BENCH_QUEUE ?? 2), requestTimeoutSeconds: 60 },
    key,
    metadata: { 'vaultkeeper-job': 'raft-snapshot', 'vaultkeeper-format': '2', cluster: 'bench', 'vault-version': 'bench', 'vault-node': 'synthetic', 'taken-at': new Date().toISOString(), 'run-id': 'bench' },
    source: { body, node: 'synthetic' },
    log,
  });
  bytes = report.bytes;
} else if (mode === 'upload-file') {
  bytes = statSync(arg!).size;
  await new Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: createReadStream(arg!), ServerSideEncryption: 'aws:kms', SSEKMSKeyId: process.env.BENCH_KMS_KEY },
  }).done();
} else {
  throw new Error(`unknown mode ${mode}`);
}
const seconds = (performance.now() - started) / 1000;
await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
process.stdout.write(JSON.stringify({ bytes, seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
