import { gzipSync } from 'node:zlib';

/** A release record the way Helm 3 writes it: JSON, gzip, base64; then the Secret's own base64. */
export function helmRecordField(release: unknown, gzip = true): string {
  const json = Buffer.from(JSON.stringify(release));
  const helm = (gzip ? gzipSync(json) : json).toString('base64');
  return Buffer.from(helm).toString('base64');
}
