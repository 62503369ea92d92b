import { describe, expect, it } from 'vitest';
import type { Connection } from '../connection/index.js';
import { DeliveryBacklog } from './delivery-backlog.js';
import type { ConnDelivery } from './outcome.js';

const conn = (id: string): Connection => ({ id, state: 'open' }) as unknown as Connection;
const event = (c: Connection, path: string): ConnDelivery => ({ conn: c, path, watch: { token: 't' } }) as unknown as ConnDelivery;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(perTurn: number) {
  const out: string[] = [];
  const backlog = new DeliveryBacklog((d) => out.push(`${(d.conn as unknown as { id: string }).id}:${d.path}`), perTurn);
  return { out, backlog };
}

describe('DeliveryBacklog (issue 18: one request\'s events spread over turns, order kept)', () => {
  it('sends perTurn events at once and the rest perTurn a turn, in order; the promise settles after the last', async () => {
    const { out, backlog } = setup(10);
    const a = conn('a');
    let settled = false;
    const later = backlog.send(Array.from({ length: 25 }, (_, i) => event(a, `/p${i}`)));
    expect(later).toBeDefined();
    void later!.then(() => (settled = true));
    expect(out).toHaveLength(10);
    // Not in the check phase right after the request's turn (others' input is read first).
    await turn();
    expect(out).toHaveLength(10);
    await turn();
    expect(out).toHaveLength(20);
    expect(settled).toBe(false);
    await turn();
    expect(out).toEqual(Array.from({ length: 25 }, (_, i) => `a:/p${i}`));
    await later;
    expect(settled).toBe(true);
    expect(backlog.deferred).toBe(15);
  });

  it('sends at once, with no promise, a request whose events fit a turn', () => {
    const { out, backlog } = setup(10);
    expect(backlog.send([event(conn('a'), '/x')])).toBeUndefined();
    expect(out).toEqual(['a:/x']);
  });

  it('keeps each connection\'s order: later events wait behind those waiting, and before() sends them first', async () => {
    const { out, backlog } = setup(2);
    const [a, b, c] = [conn('a'), conn('b'), conn('c')];
    void backlog.send([event(a, '/1'), event(b, '/1'), event(a, '/2'), event(b, '/2'), event(c, '/1')]);
    // a:/1 and b:/1 went; a:/2, b:/2, c:/1 wait.
    expect(out).toEqual(['a:/1', 'b:/1']);
    // Another request's event for b waits behind b's; one for a new connection goes at once.
    void backlog.send([event(b, '/3'), event(conn('d'), '/1')]);
    expect(out).toEqual(['a:/1', 'b:/1', 'd:/1']);
    // b is about to get a reply: what waits for b goes first, in order.
    backlog.before(b);
    expect(out).toEqual(['a:/1', 'b:/1', 'd:/1', 'b:/2', 'b:/3']);
    for (let i = 0; i < 4; i++) await turn();
    expect(out.filter((x) => x.startsWith('a'))).toEqual(['a:/1', 'a:/2']);
    expect(out.filter((x) => x.startsWith('c'))).toEqual(['c:/1']);
    expect(out).toHaveLength(7);
  });

  it('drops what waits for a connection closed meanwhile, and still settles', async () => {
    const { out, backlog } = setup(1);
    const a = conn('a');
    const later = backlog.send([event(a, '/1'), event(a, '/2'), event(a, '/3')]);
    (a as { state: string }).state = 'closed';
    await later;
    expect(out).toEqual(['a:/1']);
  });
});
