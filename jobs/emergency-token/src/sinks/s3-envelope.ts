import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import {
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { registerSecret } from '@vaultkeeper/runtime';
import { breakGlassCredential, type BreakGlassCredential } from '../credential.ts';
import { sameFingerprint } from '../fingerprint.ts';
import { openEnvelope, parseEnvelope, sealEnvelope, type Envelope } from './envelope.ts';
import { SinkError, type CredentialSink, type Delivery } from './sink.ts';

export interface S3EnvelopeSettings {
  bucket: string;
  key: string;
  /** KMS key (id, ARN or alias) for the data key and for SSE-KMS. */
  kmsKeyId: string;
  /**
   * KMS encryption context: names the cluster and the purpose. KMS binds it to the data key, so
   * the key only decrypts with the same context, and CloudTrail logs it with every Decrypt: an
   * IAM condition on kms:EncryptionContext can limit who may open break-glass envelopes.
   */
  encryptionContext: Record<string, string>;
}

const MAX_OBJECT_BYTES = 64 * 1024;

/**
 * The default sink: an S3 object in a versioned bucket, encrypted client-side (envelope
 * encryption with a KMS data key, AES-256-GCM) and stored with SSE-KMS on top. Client-side
 * encryption means that s3:GetObject alone does not reveal the credential: kms:Decrypt with this
 * encryption context is needed too. Versioning is what makes a failed delivery undoable: deleting
 * the new version makes the previous one current again.
 */
export class S3EnvelopeSink implements CredentialSink {
  readonly name = 's3';

  constructor(
    private readonly s3: S3Client,
    private readonly kms: KMSClient,
    private readonly settings: S3EnvelopeSettings,
  ) {}

  async preflight(signal?: AbortSignal): Promise<void> {
    const res = await this.step('preflight', () =>
      this.s3.send(new GetBucketVersioningCommand({ Bucket: this.settings.bucket }), { abortSignal: signal }),
    );
    if (res.Status !== 'Enabled') {
      throw new SinkError(this.name, 'preflight', `bucket ${this.settings.bucket} does not have versioning enabled; a failed delivery could not be undone`);
    }
  }

  async deliver(credential: BreakGlassCredential, signal?: AbortSignal): Promise<Delivery> {
    const { bucket, key, kmsKeyId, encryptionContext } = this.settings;
    const dataKey = await this.step('deliver', () =>
      this.kms.send(new GenerateDataKeyCommand({ KeyId: kmsKeyId, KeySpec: 'AES_256', EncryptionContext: encryptionContext }), { abortSignal: signal }),
    );
    if (!dataKey.Plaintext || !dataKey.CiphertextBlob || !dataKey.KeyId) throw new SinkError(this.name, 'deliver', 'KMS GenerateDataKey returned no key');
    let sealed: Envelope;
    try {
      sealed = sealEnvelope(Buffer.from(JSON.stringify(credential), 'utf8'), { plaintext: dataKey.Plaintext }, {
        kmsKeyId: dataKey.KeyId,
        encryptionContext,
        encryptedDataKey: Buffer.from(dataKey.CiphertextBlob).toString('base64'),
        kind: credential.kind,
        accessor: credential.accessor,
        fingerprint: credential.fingerprint,
        createdAt: credential.createdAt,
        expiresAt: credential.expiresAt,
      });
    } finally {
      dataKey.Plaintext.fill(0);
    }
    const put = await this.step('deliver', () =>
      this.s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify(sealed, null, 2),
          ContentType: 'application/json',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: kmsKeyId,
          // Public facts only, so `aws s3api head-object` tells which credential a version holds.
          Metadata: { accessor: credential.accessor, fingerprint: credential.fingerprint, 'expires-at': credential.expiresAt },
        }),
        { abortSignal: signal },
      ),
    );
    if (!put.VersionId) throw new SinkError(this.name, 'deliver', `bucket ${bucket} returned no version id; is versioning on?`);
    return { location: `s3://${bucket}/${key}?versionId=${put.VersionId}`, version: put.VersionId };
  }

  async readBack(delivery: Delivery, signal?: AbortSignal): Promise<BreakGlassCredential> {
    const found = await this.fetch(delivery.version, 'read-back', signal);
    if (!found) throw new SinkError(this.name, 'read-back', `version ${delivery.version} of s3://${this.settings.bucket}/${this.settings.key} is not there`);
    return found.credential;
  }

  async current(signal?: AbortSignal): Promise<{ delivery: Delivery; credential: BreakGlassCredential } | undefined> {
    return this.fetch(undefined, 'read', signal);
  }

  async undo(credential: Pick<BreakGlassCredential, 'accessor'>, signal?: AbortSignal): Promise<number> {
    // S3 lists the versions of a key newest first. Every version from the newest down that
    // carries this credential's accessor (user metadata, set by deliver) is ours: the delivery's,
    // an unanswered PUT's, an SDK retry's. Deleting a version removes it for good (no delete
    // marker) and the one before becomes current. The first version of another credential ends
    // the walk: what lies below it is history. Needs s3:ListBucketVersions on the bucket,
    // s3:GetObjectVersion and s3:DeleteObjectVersion on the key.
    const { bucket, key } = this.settings;
    let taken = 0;
    let markers: { KeyMarker?: string; VersionIdMarker?: string } = {};
    for (;;) {
      const page = await this.step('undo', () =>
        this.s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key, MaxKeys: 20, ...markers }), { abortSignal: signal }),
      );
      for (const v of (page.Versions ?? []).filter((v) => v.Key === key && v.VersionId)) {
        const head = await this.step('undo', () =>
          this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: v.VersionId }), { abortSignal: signal }),
        );
        if (head.Metadata?.accessor !== credential.accessor) return taken;
        await this.step('undo', () => this.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: v.VersionId }), { abortSignal: signal }));
        taken++;
      }
      if (!page.IsTruncated || page.NextKeyMarker !== key) return taken;
      markers = { KeyMarker: page.NextKeyMarker, ...(page.NextVersionIdMarker ? { VersionIdMarker: page.NextVersionIdMarker } : {}) };
    }
  }

  private async fetch(versionId: string | undefined, step: string, signal?: AbortSignal) {
    const { bucket, key } = this.settings;
    let text: string;
    let version: string;
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }), { abortSignal: signal });
      if ((res.ContentLength ?? 0) > MAX_OBJECT_BYTES) throw new SinkError(this.name, step, `s3://${bucket}/${key} is larger than an envelope can be`);
      text = (await res.Body?.transformToString('utf8')) ?? '';
      version = res.VersionId ?? versionId ?? 'null';
    } catch (err) {
      if (err instanceof Error && (err.name === 'NoSuchKey' || err.name === 'NotFound') && !versionId) return undefined;
      if (err instanceof SinkError) throw err;
      throw new SinkError(this.name, step, describeAwsError(err), { cause: err });
    }
    const credential = await this.open(text, step, signal);
    return { delivery: { location: `s3://${bucket}/${key}?versionId=${version}`, version }, credential };
  }

  private async open(text: string, step: string, signal?: AbortSignal): Promise<BreakGlassCredential> {
    let env: Envelope;
    try {
      env = parseEnvelope(text);
    } catch {
      throw new SinkError(this.name, step, `s3://${this.settings.bucket}/${this.settings.key} is not a vaultkeeper envelope`);
    }
    // The context is ours to decide, not the object's: an envelope naming another context is refused.
    const expected = this.settings.encryptionContext;
    const same = Object.keys(expected).length === Object.keys(env.encryptionContext).length && Object.entries(expected).every(([k, v]) => env.encryptionContext[k] === v);
    if (!same) throw new SinkError(this.name, step, 'the envelope names another KMS encryption context (another cluster or purpose)');
    const key = await this.step(step, () =>
      this.kms.send(
        new DecryptCommand({ CiphertextBlob: Buffer.from(env.encryptedDataKey, 'base64'), EncryptionContext: expected, KeyId: env.kmsKeyId }),
        { abortSignal: signal },
      ),
    );
    if (!key.Plaintext) throw new SinkError(this.name, step, 'KMS Decrypt returned no key');
    let plaintext: Buffer;
    try {
      plaintext = openEnvelope(env, { plaintext: key.Plaintext });
    } catch {
      throw new SinkError(this.name, step, 'the envelope does not decrypt (changed, truncated or another key)');
    } finally {
      key.Plaintext.fill(0);
    }
    const parsed = breakGlassCredential.safeParse(JSON.parse(plaintext.toString('utf8')));
    plaintext.fill(0);
    if (!parsed.success) throw new SinkError(this.name, step, 'the decrypted envelope is not a break-glass credential');
    registerSecret(parsed.data.secret);
    if (!sameFingerprint(parsed.data.fingerprint, env.fingerprint) || parsed.data.accessor !== env.accessor) {
      throw new SinkError(this.name, step, 'the envelope header does not match its content');
    }
    return parsed.data;
  }

  private async step<T>(step: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof SinkError) throw err;
      throw new SinkError(this.name, step, describeAwsError(err), { cause: err });
    }
  }
}

/** The AWS error's name and message: what went wrong, never the request (which may hold ciphertext). */
function describeAwsError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message;
}
