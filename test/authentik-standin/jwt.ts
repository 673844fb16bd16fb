import { createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/** An RSA key pair the way the stand-in stores it: Authentik's CertificateKeyPair, reduced to what signing needs. */
export interface StandinKeyPair {
  /** CertificateKeyPair pk (a UUID): what OAuth2Provider.signing_key points at. */
  pk: string;
  name: string;
  kid: string;
  privateKeyPem: string;
}

export function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export function generateRsaKeyPair(pk: string, name: string): StandinKeyPair {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return { pk, name, kid: jwkThumbprint(createPublicKey(privateKey)), privateKeyPem };
}

/** RFC 7638 thumbprint of an RSA public key; a stable, unique `kid`. */
function jwkThumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  const canonical = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  return b64url(createHash('sha256').update(canonical).digest());
}

/** The public JWK of a key pair, with the fields Authentik's JWKS view sets for a signing key. */
export function publicJwk(key: StandinKeyPair): Record<string, unknown> {
  const jwk = createPublicKey(createPrivateKey(key.privateKeyPem)).export({ format: 'jwk' });
  return { kty: 'RSA', alg: 'RS256', use: 'sig', kid: key.kid, n: jwk.n, e: jwk.e };
}

/** A compact JWS: RS256 with the key pair, or (a provider without signing key, like Authentik) HS256 with the client secret. */
export function signJwt(claims: Record<string, unknown>, signer: { key: StandinKeyPair } | { hmacSecret: string }): string {
  const header = 'key' in signer ? { alg: 'RS256', kid: signer.key.kid, typ: 'JWT' } : { alg: 'HS256', typ: 'JWT' };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature =
    'key' in signer
      ? sign('sha256', Buffer.from(input), createPrivateKey(signer.key.privateKeyPem))
      : createHmac('sha256', signer.hmacSecret).update(input).digest();
  return `${input}.${b64url(signature)}`;
}

/** OIDC `at_hash`: left half of SHA-256 of the access token, base64url. */
export function atHash(accessToken: string): string {
  const digest = createHash('sha256').update(accessToken).digest();
  return b64url(digest.subarray(0, digest.length / 2));
}

/** Decodes a JWT's parts without verifying it (tests and diagnostics only). */
export function decodeJwt(jwt: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [h, c] = jwt.split('.');
  if (!h || !c) throw new Error('not a JWT');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as Record<string, unknown>,
  };
}
