import { describe, expect, it } from 'vitest';
import { createStore, DEFAULT_LIMITS, guest, Transaction, XsError, type Limits } from '../../store/index.js';
import type { Connection } from '../connection/index.js';
import { DomainBudgets } from './domain-budgets.js';
import { WatchRegistry, watchBytes } from '../watches/index.js';

/** The part of a connection a budget reads: who it is, its transactions, its pending output. */
function conn(domid: number, kind: Connection['kind'] = 'domain', pendingBytes = 0): Connection {
  return { caller: guest(domid), kind, transactions: new Map(), pendingBytes } as unknown as Connection;
}

function code(f: () => void): string {
  try {
    f();
    return 'none';
  } catch (e) {
    return e instanceof XsError ? e.code : String(e);
  }
}

const watch = (owner: Connection, path: string, token = 't') => ({ owner, path, canonical: path, token, relative: false });

describe('DomainBudget: every quota is the domain\'s, over all its connections', () => {
  it('watches: E2BIG once the domain holds `watches`, whichever connection asks', () => {
    const watches = new WatchRegistry<Connection>();
    const budgets = new DomainBudgets(watches);
    const a = conn(5);
    const b = conn(5);
    const other = conn(6);
    const ba = budgets.join(a);
    expect(budgets.join(b)).toBe(ba);
    const bo = budgets.join(other);
    const limits: Limits = { ...DEFAULT_LIMITS, watches: 3 };
    watches.add(watch(a, '/w1'));
    watches.add(watch(b, '/w2'));
    watches.add(watch(b, '/w3'));
    expect(ba.watchCount()).toBe(3);
    expect(code(() => ba.admitWatch(limits, 0))).toBe('E2BIG');
    // Another domain has its own.
    expect(code(() => bo.admitWatch(limits, 0))).toBe('none');
    watches.removeOwner(b);
    expect(code(() => ba.admitWatch(limits, 0))).toBe('none');
  });

  it('transactions: ENOSPC once the domain has `transactions` open', () => {
    const budgets = new DomainBudgets(new WatchRegistry<Connection>());
    const a = conn(5);
    const b = conn(5);
    const budget = budgets.join(a);
    budgets.join(b);
    const limits: Limits = { ...DEFAULT_LIMITS, transactions: 2 };
    a.transactions.set(1, new Transaction(createStore(), guest(5), limits));
    b.transactions.set(1, new Transaction(createStore(), guest(5), limits));
    expect(budget.transactionCount()).toBe(2);
    expect(code(() => budget.admitTransaction(limits))).toBe('ENOSPC');
    b.transactions.clear();
    expect(code(() => budget.admitTransaction(limits))).toBe('none');
  });

  it('memory: transactions\' logs, watches and pending output, summed; ENOSPC past the quota', () => {
    const watches = new WatchRegistry<Connection>();
    const budgets = new DomainBudgets(watches);
    const a = conn(5, 'domain', 100);
    const b = conn(5, 'http', 20);
    const budget = budgets.join(a);
    budgets.join(b);
    const tx = new Transaction(createStore(), guest(5), DEFAULT_LIMITS);
    // Refused (guest 5 has no home here), and still logged with its value: it is held all the same.
    code(() => tx.execute({ op: 'write', path: 'x', value: 'v'.repeat(1000) }));
    expect(tx.bytes).toBeGreaterThan(1000);
    a.transactions.set(1, tx);
    const w = watch(b, '/some/path', 'token'.repeat(100));
    watches.add(w);
    expect(budget.memory()).toBe(100 + 20 + tx.bytes + watchBytes(w));
    const limits: Limits = { ...DEFAULT_LIMITS, memory: budget.memory() + 10 };
    expect(code(() => budget.admitBytes(limits, 10))).toBe('none');
    expect(code(() => budget.admitBytes(limits, 11))).toBe('ENOSPC');
    expect(code(() => budget.admitWatch(limits, 11))).toBe('ENOSPC');
    expect(budget.overMemory(limits, 11)).toBe(true);
    // Everything comes back when the holders go.
    a.transactions.clear();
    watches.removeOwner(b);
    expect(budget.memory()).toBe(120);
  });

  it('a budget goes with its domain\'s last connection; only socket connections count as sockets', () => {
    const budgets = new DomainBudgets(new WatchRegistry<Connection>());
    const a = conn(5);
    const h = conn(5, 'http');
    const budget = budgets.join(a);
    budgets.join(h);
    expect(budget.sockets).toBe(1);
    expect(budgets.sockets).toBe(1);
    budgets.leave(a, budget);
    budgets.leave(a, budget); // twice is once
    expect(budgets.sockets).toBe(0);
    expect(budgets.get(5)).toBe(budget);
    budgets.leave(h, budget);
    expect(budgets.get(5)).toBeUndefined();
    // A domid that comes back starts from nothing (XSA-483).
    expect(budgets.join(conn(5))).not.toBe(budget);
  });
});

describe('watchBytes', () => {
  it('counts the token and both paths, the path as sent only when it differs', () => {
    const abs = watchBytes({ path: '/a/b', canonical: '/a/b', token: 'tok' });
    const rel = watchBytes({ path: 'b', canonical: '/local/domain/5/b', token: 'tok' });
    expect(rel - abs).toBe('/local/domain/5/b'.length + 1 - '/a/b'.length);
    expect(watchBytes({ path: '/a/b', canonical: '/a/b', token: 'x'.repeat(4000) }) - abs).toBe(3997);
  });

  it('the registry keeps each owner\'s total through add, remove and removeOwner', () => {
    const r = new WatchRegistry<string>();
    const w1 = { owner: 'c', path: '/a', canonical: '/a', token: 't1', relative: false };
    const w2 = { owner: 'c', path: '/a/b', canonical: '/a/b', token: 'tt2', relative: false };
    r.add(w1);
    r.add(w2);
    expect(r.bytes('c')).toBe(watchBytes(w1) + watchBytes(w2));
    r.remove(w1);
    r.remove(w1); // not there any more: nothing changes
    expect(r.bytes('c')).toBe(watchBytes(w2));
    r.add(w1);
    r.removeOwner('c');
    expect(r.bytes('c')).toBe(0);
  });
});
