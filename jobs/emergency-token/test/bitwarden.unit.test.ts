// The Bitwarden sink without a Bitwarden server (none can run here, and Vaultwarden does not
// implement the Secrets Manager API): its logic against a recording stand-in for the three SDK
// calls it uses, and the real SDK's own behaviour where it needs no server (token format, an
// unreachable loopback endpoint).
import { randomBytes, randomUUID } from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import type { BreakGlassCredential } from '../src/credential.ts';
import { fingerprint } from '../src/fingerprint.ts';
import { BitwardenSink, loadBitwardenSdk, type BitwardenSecret, type BitwardenSecretsApi } from '../src/sinks/bitwarden.ts';
import { SinkError } from '../src/sinks/sink.ts';

const ORG = randomUUID();
const SECRET_ID = randomUUID();
const ACCESS_TOKEN = `0.${randomUUID()}.${randomBytes(22).toString('base64url')}:${randomBytes(16).toString('base64')}`;

function credential(secret = 's.' + randomBytes(18).toString('base64url')): BreakGlassCredential {
  return {
    kind: 'launcher',
    secret,
    accessor: 'acc-' + randomBytes(4).toString('hex'),
    createdAt: '2026-01-01T00:00:00.000Z',
    expiresAt: '2026-02-01T00:00:00.000Z',
    fingerprint: fingerprint(secret),
    vaultAddress: 'https://vault.example.com',
    mintWith: 'breakglass-admin',
    purpose: 'test',
    rotatedBy: 'vaultkeeper-emergency-token',
    runId: 'r1',
  };
}

/** Records the calls and keeps one secret, bumping its revision on every update as the service does. */
function recordingApi(initial: Partial<BitwardenSecret> = {}) {
  let rev = Date.parse('2026-01-01T00:00:00Z');
  const state: BitwardenSecret = {
    id: SECRET_ID,
    organizationId: ORG,
    projectId: 'proj-1',
    key: 'vault-breakglass',
    value: 'the previous credential',
    note: 'kept by hand',
    revisionDate: new Date(rev),
    ...initial,
  };
  const calls: string[] = [];
  const api: BitwardenSecretsApi = {
    login: async (token) => void calls.push(`login:${token === ACCESS_TOKEN}`),
    get: async (id) => {
      calls.push(`get:${id}`);
      return { ...state };
    },
    update: async (org, id, key, value, note, projectIds) => {
      calls.push(`update:${org}:${id}:${key}:${projectIds.join(',')}`);
      Object.assign(state, { value, note, revisionDate: new Date((rev += 1000)) });
      return { ...state };
    },
  };
  return { api, state, calls };
}

const settings = { organizationId: ORG, secretId: SECRET_ID, accessToken: ACCESS_TOKEN };
const instructions = () => ['read -rs BREAKGLASS_LAUNCHER'];

describe('BitwardenSink (logic)', () => {
  it('delivers the secret as the value and only public facts in the note, keeping key and project', async () => {
    const { api, state, calls } = recordingApi();
    const sink = new BitwardenSink(api, settings, instructions);
    await sink.preflight();
    const c = credential();
    const d = await sink.deliver(c);
    expect(state.value).toBe(c.secret);
    expect(state.note).not.toContain(c.secret);
    expect(JSON.parse(state.note)).toMatchObject({ accessor: c.accessor, fingerprint: c.fingerprint, howToUse: ['read -rs BREAKGLASS_LAUNCHER'] });
    expect(calls).toContain(`update:${ORG}:${SECRET_ID}:vault-breakglass:proj-1`);
    expect(calls[0]).toBe('login:true');
    expect(d.location).toBe(`bitwarden://${ORG}/secrets/${SECRET_ID}?revision=${d.version}`);
    const back = await sink.readBack(d);
    expect(back).toEqual(c);
  });

  it('notices a write by someone else between delivery and read-back', async () => {
    const { api, state } = recordingApi();
    const sink = new BitwardenSink(api, settings, instructions);
    const d = await sink.deliver(credential());
    state.revisionDate = new Date(Date.parse(String(d.version)) + 5000);
    await expect(sink.readBack(d)).rejects.toThrow(/changed after our write/);
  });

  it('undo puts the previous value and note back', async () => {
    const { api, state } = recordingApi();
    const sink = new BitwardenSink(api, settings, instructions);
    await sink.preflight();
    const delivered = credential();
    await sink.deliver(delivered);
    expect(await sink.undo(credential()), 'another credential: not ours to take back').toBe(0);
    expect(await sink.undo(delivered)).toBe(1);
    expect(state.value).toBe('the previous credential');
    expect(state.note).toBe('kept by hand');
  });

  it('refuses a secret of another organization, and reads a hand-made note as "no credential yet"', async () => {
    const other = recordingApi({ organizationId: randomUUID() });
    await expect(new BitwardenSink(other.api, settings, instructions).preflight()).rejects.toThrow(/another organization/);
    const hand = recordingApi();
    expect(await new BitwardenSink(hand.api, settings, instructions).current()).toBeUndefined();
  });

  it('wraps SDK failures as SinkError naming the step', async () => {
    const { api } = recordingApi();
    const failing = { ...api, get: async () => Promise.reject(new Error('error sending request for url (https://api.bitwarden.com/secrets/x)')) };
    const err = await new BitwardenSink(failing, settings, instructions).preflight().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SinkError);
    expect((err as SinkError).step).toBe('preflight');
  });
});

async function closedLoopbackPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('the real @bitwarden/sdk-napi, without a server', () => {
  it('loads, rejects a malformed access token locally, and never echoes it', async () => {
    const port = await closedLoopbackPort();
    const api = await loadBitwardenSdk({ apiUrl: `http://127.0.0.1:${port}/api`, identityUrl: `http://127.0.0.1:${port}/identity` });
    const bad = 'not-a-token-' + randomBytes(8).toString('hex');
    const sink = new BitwardenSink(api, { ...settings, accessToken: bad }, instructions);
    const err = (await sink.preflight().catch((e: unknown) => e)) as SinkError;
    expect(err).toBeInstanceOf(SinkError);
    expect(err.step).toBe('login');
    expect(err.message).toMatch(/not in a valid format/);
    expect(err.message).not.toContain(bad);
  });

  it('fails a well-formed token against an unreachable endpoint with a SinkError that does not hold it', async () => {
    const port = await closedLoopbackPort();
    const api = await loadBitwardenSdk({ apiUrl: `http://127.0.0.1:${port}/api`, identityUrl: `http://127.0.0.1:${port}/identity` });
    const err = (await new BitwardenSink(api, settings, instructions).preflight().catch((e: unknown) => e)) as SinkError;
    expect(err).toBeInstanceOf(SinkError);
    expect(err.message).toMatch(/error sending request/);
    expect(err.message).not.toContain(ACCESS_TOKEN);
    expect(err.message).not.toContain(ACCESS_TOKEN.split(':')[1]);
  });
});
