import { describe, expect, it } from 'vitest';
import { AbortedError } from '@vaultkeeper/runtime';
import { failed } from '../src/check.ts';
import { judgeQuorum } from '../src/checks/raft.ts';
import type { NodeReport } from '../src/checks/vault-nodes.ts';
import { vaultFailureOutcome } from '../src/classify-vault-error.ts';

const standby = (name: string): NodeReport => ({ name, address: `http://${name}`, initialized: true, sealed: false, healthStatus: 429, role: 'standby' });
const active = (name: string): NodeReport => ({ ...standby(name), healthStatus: 200, role: 'active' });
const down = (name: string): NodeReport => ({ name, address: `http://${name}`, error: { class: 'unreachable', reason: 'ECONNREFUSED' } });
const sealed = (name: string): NodeReport => ({ name, address: `http://${name}`, initialized: true, sealed: true, healthStatus: 503, role: 'sealed' });
const why = failed('unreachable', 'login: no answer in time');

describe('judgeQuorum: raft from the nodes\' unauthenticated answers', () => {
  it('one of three voters up, none active: no quorum, naming every node, the login failure as a note', () => {
    const o = judgeQuorum([down('a'), standby('b'), down('c')], { expectedVoters: 3, why });
    expect(o).toMatchObject({ status: 'fail', class: 'no-quorum' });
    expect(o.summary).toBe('no quorum: 1 of 3 voters answer (a unreachable (ECONNREFUSED); b standby; c unreachable (ECONNREFUSED)), 2 needed: no active node');
    expect(o.notes).toContain('unreachable: login: no answer in time');
  });

  it('a sealed node is no voter: two up of which one sealed is still no quorum', () => {
    expect(judgeQuorum([sealed('a'), standby('b'), down('c')], { expectedVoters: 3, why })).toMatchObject({ class: 'no-quorum' });
  });

  it('a majority up but none active: no active node (degraded)', () => {
    const o = judgeQuorum([standby('a'), standby('b'), down('c')], { expectedVoters: 3, why });
    expect(o).toMatchObject({ status: 'fail', class: 'degraded' });
    expect(o.summary).toBe('degraded: no active node (a standby; b standby; c unreachable (ECONNREFUSED))');
  });

  it('an active node answers, or not every voter was asked: the original failure stands', () => {
    expect(judgeQuorum([active('a'), standby('b'), down('c')], { expectedVoters: 3, why })).toMatchObject({ class: 'unreachable', summary: why.summary });
    expect(judgeQuorum([standby('vault-active')], { expectedVoters: 3, why })).toMatchObject({ class: 'unreachable', summary: why.summary });
  });
});

describe('judgeQuorum counts distinct voters, not addresses (review 6)', () => {
  it('vault.address (maybe a Service) answering beside per-node fallbacks that cover the voters is not a second survivor', () => {
    // VAULT_ADDR a Service in front of the pods, the fallbacks the three pods: the survivor answers twice.
    const service: NodeReport = { ...standby('vault.svc'), entry: true };
    const o = judgeQuorum([service, down('a'), standby('b'), down('c')], { expectedVoters: 3, why });
    expect(o).toMatchObject({ status: 'fail', class: 'no-quorum' });
    expect(o.summary).toContain('1 of 3 voters answer');
    expect(o.notes!.join('\n')).toContain('vault.svc');
  });

  it('with fewer per-node addresses than voters, vault.address counts as a node of its own (as before)', () => {
    const entry: NodeReport = { ...standby('a'), entry: true };
    expect(judgeQuorum([entry, standby('b'), down('c')], { expectedVoters: 3, why })).toMatchObject({ class: 'degraded' });
  });

  it('two addresses of the same Raft node count once; a known non-voter does not count', () => {
    const same = (name: string): NodeReport => ({ ...standby(name), nodeId: 'bao-2', voter: true });
    const nonVoter: NodeReport = { ...standby('d'), nodeId: 'bao-4', voter: false };
    const o = judgeQuorum([down('a'), same('b'), same('b-alias'), down('c'), nonVoter], { expectedVoters: 3, why });
    expect(o).toMatchObject({ class: 'no-quorum' });
    expect(o.summary).toContain('1 of 3 voters answer');
  });
});

describe('vaultFailureOutcome on a timeout', () => {
  it('the retry helper\'s AbortedError after a timeout is "no answer in time", not "other"', () => {
    const s = AbortSignal.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    expect(vaultFailureOutcome(new AbortedError(String(s.reason)), 'login')).toMatchObject({ class: 'unreachable', summary: 'unreachable: login: no answer in time' });
  });
});
