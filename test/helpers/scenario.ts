/**
 * Scenario tables, as in oxenstored's `tests/unit_tests.ml`: each row is
 * (connection, transaction, op, payload, expected reply), run in order over real sockets.
 *
 * - connection: a key of the `conns` record.
 * - transaction: 0, a literal tx_id, or `$name` for an id bound earlier by a TRANSACTION_START row
 *   whose expected reply is `$name` (the reply must be `<decimal>|`).
 * - op: a name of `Op` (`'WRITE'`), or the pseudo-op `'EVENTS'`, which takes every watch event the
 *   connection has received (after a `sync()` round trip) and compares them, sorted, with the
 *   expected `'path token, path token'` (`''` for none).
 * - payload: in `|` notation (`'/a|value'`, `'/a|'`).
 * - expected: the reply as `show()` gives it: `'OK|'`, a READ value, `'a|b|'`, or an error name.
 *   A RegExp matches instead of comparing.
 */
import { expect } from 'vitest';
import { Op, type OpName } from '../../protocol/index.js';
import type { Wire } from './wire.js';

export type Row = readonly [conn: string, tx: number | `$${string}`, op: OpName | 'EVENTS', payload: string, expected: string | RegExp];

export async function runScenario(conns: Readonly<Record<string, Wire>>, rows: readonly Row[]): Promise<void> {
  const txs = new Map<string, number>();
  for (const [i, [name, tx, op, payload, expected]] of rows.entries()) {
    const c = conns[name];
    if (c === undefined) throw new Error(`row ${i}: no connection ${name}`);
    const where = `row ${i}: ${name} ${tx} ${op} ${JSON.stringify(payload)}`;
    if (op === 'EVENTS') {
      const got = (await c.drain()).sort().join(', ');
      const want = typeof expected === 'string' ? expected.split(', ').filter((s) => s !== '').sort().join(', ') : expected;
      if (typeof want === 'string') expect(got, where).toBe(want);
      else expect(got, where).toMatch(want);
      continue;
    }
    let txId: number;
    if (typeof tx === 'number') txId = tx;
    else {
      const bound = txs.get(tx);
      if (bound === undefined) throw new Error(`${where}: transaction ${tx} not started`);
      txId = bound;
    }
    const got = await c.ask(Op[op], payload, { txId });
    if (op === 'TRANSACTION_START' && typeof expected === 'string' && expected.startsWith('$')) {
      expect(got, where).toMatch(/^[1-9]\d*\|$/);
      txs.set(expected, Number(got.slice(0, -1)));
      continue;
    }
    if (typeof expected === 'string') expect(got, where).toBe(expected);
    else expect(got, where).toMatch(expected);
  }
}
