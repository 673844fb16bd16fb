import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import {
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
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
   * KMS encryption context: `cluster` (the label in the default key), `clusterId` (the Vault
   * cluster's cluster_id) and `purpose`. KMS binds it to the data key, so the key only decrypts
   * with the same context, and CloudTrail logs it with every Decrypt: an IAM condition on
   * kms:EncryptionContext can limit who may open break-glass envelopes.
   */
  encryptionContext: { cluster: string; clusterId: string; purpose: string };
}

/**
 * Whose envelope this is. Envelopes written before the cluster id was part of the context carry
 * `{cluster, purpose}` only (`legacy`): they are accepted for the same cluster label, since the
 * upgrade must not lock operators out, but cannot prove which Vault cluster made them.
 */
export function envelopeOwner(expected: S3EnvelopeSettings['encryptionContext'], found: Record<string, string>): 'ours' | 'legacy' | 'other' {
  const keys = Object.keys(found).sort().join(',');
  if (keys === 'cluster,clusterId,purpose' && found.cluster === expected.cluster && found.clusterId === expected.clusterId && found.purpose === expected.purpose) return 'ours';
  if (keys === 'cluster,purpose' && found.cluster === expected.cluster && found.purpose === expected.purpose) return 'legacy';
  return 'other';
}

/** An envelope's owner for a message: context values are names and ids, never secrets. */
const ownerOf = (c: Record<string, string>) => (c.clusterId ? `cluster id ${c.clusterId} (label ${c.cluster})` : `cluster label ${c.cluster ?? '(none)'}, no cluster id`);

/** Copies of one delivery undo takes back at most (the PUT and the SDK's retries of it). */
const MAX_COPIES = 20;
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

  get location(): string {
    return `s3://${this.settings.bucket}/${this.settings.key}`;
  }

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
    // One cluster never overwrites another's envelope (two clusters given the same key by hand):
    // the header names its cluster in the clear, no decryption needed.
    const header = await this.currentHeader(signal);
    if (header && envelopeOwner(this.settings.encryptionContext, header.encryptionContext) === 'other') {
      throw new SinkError(
        this.name,
        'preflight',
        `s3://${this.settings.bucket}/${this.settings.key} holds the envelope of another Vault cluster (${ownerOf(header.encryptionContext)}), not this one's (cluster id ${this.settings.encryptionContext.clusterId}); refusing to overwrite it: give each cluster its own BREAKGLASS_S3_KEY, or leave it and BREAKGLASS_CLUSTER unset`,
      );
    }
  }

  /** The current object's envelope header (clear fields only); undefined when there is none or it is not an envelope. */
  private async currentHeader(signal?: AbortSignal): Promise<Envelope | undefined> {
    const { bucket, key } = this.settings;
    let text: string;
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      if ((res.ContentLength ?? 0) > MAX_OBJECT_BYTES) return undefined;
      text = (await res.Body?.transformToString('utf8')) ?? '';
    } catch (err) {
      if (err instanceof Error && (err.name === 'NoSuchKey' || err.name === 'NotFound')) return undefined;
      throw new SinkError(this.name, 'preflight', describeAwsError(err), { cause: err });
    }
    try {
      return parseEnvelope(text);
    } catch {
      return undefined;
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

  async current(signal?: AbortSignal): Promise<{ delivery: Delivery; credential: BreakGlassCredential; note?: string } | undefined> {
    return this.fetch(undefined, 'read', signal);
  }

  async undo(credential: Pick<BreakGlassCredential, 'accessor'>, signal?: AbortSignal): Promise<number> {
    // The current version of the key, while it carries this credential's accessor (user
    // metadata, set by deliver), is ours: the delivery's, an unanswered PUT's, an SDK retry's.
    // Deleting a version removes it for good (no delete marker) and the one before becomes
    // current, so the walk takes them newest first and stops at the first version of another
    // credential: what lies below it is history. Asking for the current version (HeadObject,
    // s3:GetObject) rather than listing the versions needs no s3:ListBucketVersions, which
    // policies from before this job undid deliveries this way do not grant; it also finds a
    // copy whose PUT answer (and so its version id) was lost. Needs s3:DeleteObjectVersion.
    const { bucket, key } = this.settings;
    for (let taken = 0; ; taken++) {
      let head;
      try {
        head = await this.step('undo', () => this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal }));
      } catch (err) {
        // No current version (never delivered, or only a delete marker left): nothing of ours.
        if (err instanceof SinkError && err.cause instanceof Error && (err.cause.name === 'NotFound' || err.cause.name === 'NoSuchKey')) return taken;
        throw err;
      }
      if (head.Metadata?.accessor !== credential.accessor || !head.VersionId) return taken;
      // More copies than an SDK's retries make means something else keeps writing them.
      if (taken >= MAX_COPIES) throw new SinkError(this.name, 'undo', `s3://${bucket}/${key} still holds this credential after ${taken} copies were taken back`);
      const versionId = head.VersionId;
      await this.step('undo', () => this.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }), { abortSignal: signal }));
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
    const { credential, legacy } = await this.open(text, step, signal);
    return {
      delivery: { location: `s3://${bucket}/${key}?versionId=${version}`, version },
      credential,
      ...(legacy ? { note: 'this envelope was written before envelopes named their Vault cluster id: which cluster made it cannot be checked; the job\'s next rotation replaces it' } : {}),
    };
  }

  private async open(text: string, step: string, signal?: AbortSignal): Promise<{ credential: BreakGlassCredential; legacy: boolean }> {
    let env: Envelope;
    try {
      env = parseEnvelope(text);
    } catch {
      throw new SinkError(this.name, step, `s3://${this.settings.bucket}/${this.settings.key} is not a vaultkeeper envelope`);
    }
    // The context is ours to decide, not the object's: an envelope of another cluster is refused.
    const owner = envelopeOwner(this.settings.encryptionContext, env.encryptionContext);
    if (owner === 'other') {
      throw new SinkError(
        this.name,
        step,
        `s3://${this.settings.bucket}/${this.settings.key} holds the envelope of another Vault cluster or purpose (${ownerOf(env.encryptionContext)}), not this one's (cluster id ${this.settings.encryptionContext.clusterId}); refusing it`,
      );
    }
    // A legacy envelope decrypts with the context it was sealed with: the same label and purpose.
    const context = owner === 'ours' ? this.settings.encryptionContext : { cluster: this.settings.encryptionContext.cluster, purpose: this.settings.encryptionContext.purpose };
    const key = await this.step(step, () =>
      this.kms.send(
        new DecryptCommand({ CiphertextBlob: Buffer.from(env.encryptedDataKey, 'base64'), EncryptionContext: context, KeyId: env.kmsKeyId }),
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
    return { credential: parsed.data, legacy: owner === 'legacy' };
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
