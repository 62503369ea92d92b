/**
 * Transaction fairness (server/transactions/fairness.ts): a transaction that keeps losing to conflicting
 * commits gets the turn and then wins; a rival commit that would change what the turn reserved
 * waits for the turn to end and is then decided as usual. Every scenario is driven step by step,
 * so "starves" and "wins" are counted attempts, never time: the idle guard (the one timed part of
 * the rule) is set far beyond any test's step, except in the test of the guard itself.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import type { Wire } from '../helpers/wire.js';

let d: RunningDaemon | undefined;

afterEach(async () => {
  await d?.stop();
  d = undefined;
});

async function start(w: Wire): Promise<number> {
  return Number((await w.ok(Op.TRANSACTION_START, '|')).toString('latin1').replace(/\0$/, ''));
}

/** Only the idle guard's own test lets a turn end by time. */
const NO_IDLE = ['--turn-idle-ms', '600000'];

const end = (w: Wire, tx: number) => w.ask(Op.TRANSACTION_END, 'T|', { txId: tx });

/** The daemon's fairness counters, from CONTROL stats: `turns N held N idle N exhausted N`. */
async function turns(w: Wire): Promise<Record<string, number>> {
  const text = await w.ask(Op.CONTROL, 'stats|');
  const line = /turns \d+ held \d+ idle \d+ exhausted \d+/.exec(text)![0].split(' ');
  return Object.fromEntries([0, 2, 4, 6].map((i) => [line[i]!, Number(line[i + 1])]));
}

/**
 * One attempt of the victim: it lists /fair/d and writes its own node; between the listing and
 * its commit, the rival commits a transaction that adds an entry to /fair/d, which changes what
 * the victim read. When `rivalMayWait`, the rival's END is not awaited before the victim goes on
 * (the turn may hold it until the victim's transaction ends).
 */
async function attempt(victim: Wire, rival: Wire, n: number, rivalMayWait: boolean): Promise<{ victim: string; rival: string }> {
  const t = await start(victim);
  await victim.dir('/fair/d', t);
  const r = await start(rival);
  await rival.write(`/fair/d/e${n}`, 'x', r);
  const rivalEnd = end(rival, r);
  if (!rivalMayWait) await rivalEnd;
  await victim.write('/fair/victim', String(n), t);
  const v = await end(victim, t);
  return { victim: v, rival: await rivalEnd };
}

describe('transaction fairness', () => {
  it('without the rule (--no-fairness), a transaction that keeps conflicting starves', async () => {
    d = await startDaemon({ args: ['--no-fairness'] });
    const [victim, rival] = await Promise.all([d.connect(), d.connect()]);
    await rival.write('/fair/d/seed', '0');
    const outcomes = [];
    for (let n = 0; n < 10; n++) outcomes.push(await attempt(victim, rival, n, false));
    expect(outcomes.map((o) => o.victim)).toEqual(Array(10).fill('EAGAIN'));
    expect(outcomes.map((o) => o.rival)).toEqual(Array(10).fill('OK|'));
  });

  it('with the rule, it fails once, then holds the turn and commits; the rival waits, then commits', async () => {
    d = await startDaemon({ args: NO_IDLE });
    const [victim, rival, ctl] = await Promise.all([d.connect(), d.connect(), d.connect()]);
    await rival.write('/fair/d/seed', '0');
    expect(await attempt(victim, rival, 0, false)).toEqual({ victim: 'EAGAIN', rival: 'OK|' });
    expect(await attempt(victim, rival, 1, true)).toEqual({ victim: 'OK|', rival: 'OK|' });
    // The rival's commit was held, not refused: the only EAGAIN is the victim's true conflict.
    expect(await turns(ctl)).toMatchObject({ turns: 1, held: 1 });
    expect(await ctl.read('/fair/victim')).toBe('1');
    expect(await ctl.dir('/fair/d')).toEqual(['e0', 'e1', 'seed']);
  });

  it('a held commit is decided after the turn, against the new store: EAGAIN if its reads changed', async () => {
    d = await startDaemon({ args: NO_IDLE });
    const [victim, rival] = await Promise.all([d.connect(), d.connect()]);
    await rival.write('/fair/d/seed', '0');
    await rival.write('/fair/victim', 'none');
    expect((await attempt(victim, rival, 0, false)).victim).toBe('EAGAIN');
    // Both now read /fair/victim and write it: the victim (holding the turn) wins; the rival,
    // held until then, finds its read changed.
    const t = await start(victim);
    await victim.dir('/fair/d', t);
    const before = await victim.read('/fair/victim', t);
    const r = await start(rival);
    expect(await rival.read('/fair/victim', r)).toBe(before);
    await rival.write('/fair/victim', 'rival', r);
    await rival.write('/fair/d/r', 'x', r);
    const rivalEnd = end(rival, r);
    await victim.write('/fair/victim', 'victim', t);
    expect(await end(victim, t)).toBe('OK|');
    expect(await rivalEnd).toBe('EAGAIN');
    expect(await victim.read('/fair/victim')).toBe('victim');
  });

  it('commits that change nothing the turn reserved go ahead; the turn keeps its snapshot', async () => {
    d = await startDaemon({ args: NO_IDLE });
    const [victim, rival, other, ctl] = await Promise.all([d.connect(), d.connect(), d.connect(), d.connect()]);
    await rival.write('/fair/d/seed', '0');
    expect((await attempt(victim, rival, 0, false)).victim).toBe('EAGAIN');
    // The victim now holds the turn. An unrelated commit and a plain write are not held...
    const t = await start(victim);
    await victim.dir('/fair/d', t);
    const u = await start(other);
    await other.write('/fair/elsewhere', 'u', u);
    expect(await end(other, u)).toBe('OK|');
    await other.write('/fair/later', 'w');
    expect(await turns(ctl)).toMatchObject({ held: 0 });
    // ...the victim does not see them (snapshot isolation, spec §16 check 19)...
    expect(await victim.ask(Op.READ, '/fair/later|', { txId: t })).toBe('ENOENT');
    await victim.write('/fair/victim', 'won', t);
    // ...so its read is stale and it loses again, but keeps the turn: the retry, which reads
    // the same nodes, is protected and commits.
    expect(await end(victim, t)).toBe('EAGAIN');
    const t2 = await start(victim);
    await victim.dir('/fair/d', t2);
    expect(await victim.read('/fair/later', t2)).toBe('w');
    const r = await start(rival);
    await rival.write('/fair/d/late', 'x', r);
    const rivalEnd = end(rival, r);
    await victim.write('/fair/victim', 'won', t2);
    expect(await end(victim, t2)).toBe('OK|');
    expect(await rivalEnd).toBe('OK|');
    expect(await turns(ctl)).toMatchObject({ turns: 1, held: 1 });
  });

  it('the turn protects the reads its failed attempt made, before it makes them again', async () => {
    d = await startDaemon({ args: NO_IDLE });
    const [victim, rival, ctl] = await Promise.all([d.connect(), d.connect(), d.connect()]);
    await rival.write('/fair/d/seed', '0');
    expect((await attempt(victim, rival, 0, false)).victim).toBe('EAGAIN');
    // The victim's retry starts; before it lists /fair/d again, the rival tries to change it.
    const t = await start(victim);
    const r = await start(rival);
    await rival.write('/fair/d/early', 'x', r);
    const rivalEnd = end(rival, r);
    expect(await victim.dir('/fair/d', t)).not.toContain('early');
    await victim.write('/fair/victim', '1', t);
    expect(await end(victim, t)).toBe('OK|');
    expect(await rivalEnd).toBe('OK|');
    expect(await turns(ctl)).toMatchObject({ held: 1 });
  });

  it('two starving clients take the turn one after the other', async () => {
    d = await startDaemon({ args: NO_IDLE });
    const [v1, v2, rival, ctl] = await Promise.all([d.connect(), d.connect(), d.connect(), d.connect()]);
    await rival.write('/fair/d/seed', '0');
    expect((await attempt(v1, rival, 1, false)).victim).toBe('EAGAIN');
    expect((await attempt(v2, rival, 2, false)).victim).toBe('EAGAIN');
    // v1 takes the turn; v2's START waits for it, so v2's snapshot includes v1's commit.
    const t1 = await start(v1);
    await v1.dir('/fair/d', t1);
    const pending2 = start(v2);
    await v1.write('/fair/d/v1', 'a', t1);
    expect(await end(v1, t1)).toBe('OK|');
    const t2 = await pending2;
    expect(await v2.dir('/fair/d', t2)).toContain('v1');
    await v2.write('/fair/d/v2', 'b', t2);
    expect(await end(v2, t2)).toBe('OK|');
    expect(await turns(ctl)).toMatchObject({ turns: 2, idle: 0 });
  });

  it('a holder that stalls while others wait loses the turn; one that disconnects passes it on', async () => {
    d = await startDaemon({ args: ['--turn-idle-ms', '50'] });
    const [victim, rival, ctl] = await Promise.all([d.connect(), d.connect(), d.connect()]);
    await rival.write('/fair/d/seed', '0');
    expect((await attempt(victim, rival, 0, false)).victim).toBe('EAGAIN');
    const t = await start(victim);
    await victim.dir('/fair/d', t);
    await victim.write('/fair/victim', 'stalled', t);
    // The victim now does nothing; the rival's conflicting commit is held, then goes through.
    const r = await start(rival);
    await rival.write('/fair/d/x', 'x', r);
    expect(await end(rival, r)).toBe('OK|');
    expect(await turns(ctl)).toMatchObject({ idle: 1 });
    expect(await end(victim, t)).toBe('EAGAIN');
    // Its next attempt holds the turn again; it disconnects, and the rival is not held.
    const t2 = await start(victim);
    await victim.dir('/fair/d', t2);
    await victim.write('/fair/ghost', 'g', t2);
    victim.close();
    let outcome = '';
    for (let n = 0; n < 50 && outcome !== 'OK|'; n++) {
      const r2 = await start(rival);
      await rival.write(`/fair/d/f${n}`, 'x', r2);
      outcome = await end(rival, r2);
    }
    expect(outcome).toBe('OK|');
    expect(await rival.ask(Op.READ, '/fair/ghost|')).toBe('ENOENT');
  });
});
