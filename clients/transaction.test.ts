import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Op, replyPayload } from '../protocol/index.js';
import { XsError } from '../protocol/index.js';
import { XsClient } from './client.js';
import { FakeXenstored, type FakeRequest } from './testing/fake-xenstored.js';
import { withTransaction } from './transaction.js';

let fake: FakeXenstored;
let client: XsClient;
let nextTx: number;
/** Answers for TRANSACTION_END T, consumed in order; OK once they run out. */
let commits: string[];

/** A daemon that numbers transactions 1, 2, 3… and answers commits from `commits`. */
function daemon(req: FakeRequest): void {
  switch (req.header.type) {
    case Op.TRANSACTION_START:
      return req.reply(replyPayload.decimal(nextTx++));
    case Op.TRANSACTION_END: {
      const answer = req.args[0] === 'T' ? commits.shift() : undefined;
      return answer === undefined ? req.reply() : req.error(answer);
    }
    case Op.READ:
      return req.reply(`read in tx ${req.header.txId}`);
    default:
      return req.reply();
  }
}

beforeEach(async () => {
  nextTx = 1;
  commits = [];
  fake = await FakeXenstored.start(daemon);
  client = await XsClient.connect(fake.path);
});

afterEach(async () => {
  await client.close();
  await fake.close();
});

const ends = (): string[] => fake.ofType(Op.TRANSACTION_END).map((r) => `${r.args[0]}${r.header.txId}`);

describe('withTransaction', () => {
  it('commits once and returns what the body returned', async () => {
    const result = await withTransaction(client, async (tx) => {
      await tx.write('/a', 'x');
      return tx.read('/a');
    });
    expect(result).toBe('read in tx 1');
    expect(fake.ofType(Op.WRITE)[0]!.header.txId).toBe(1);
    expect(ends()).toEqual(['T1']);
  });

  it('retries from TRANSACTION_START after EAGAIN: EAGAIN twice, then OK is 3 attempts', async () => {
    commits = ['EAGAIN', 'EAGAIN'];
    let attempts = 0;
    const result = await client.transaction(async (tx) => {
      attempts++;
      await tx.write('/counter', String(attempts));
      return tx.id;
    });
    expect(attempts).toBe(3);
    expect(result).toBe(3);
    expect(fake.ofType(Op.TRANSACTION_START)).toHaveLength(3);
    // Each attempt's write carries its own transaction; a failed commit needs no abort.
    expect(fake.ofType(Op.WRITE).map((r) => r.header.txId)).toEqual([1, 2, 3]);
    expect(ends()).toEqual(['T1', 'T2', 'T3']);
  });

  it('rethrows EAGAIN once the retries are used up', async () => {
    commits = ['EAGAIN', 'EAGAIN', 'EAGAIN', 'EAGAIN'];
    let attempts = 0;
    const e = await withTransaction(client, async () => void attempts++, { retries: 2 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(XsError);
    expect((e as XsError).code).toBe('EAGAIN');
    expect(attempts).toBe(3);
  });

  it('aborts (END F) and rethrows on any other error, without retrying', async () => {
    fake.handler = (req) => (req.header.type === Op.WRITE ? req.error('EACCES') : daemon(req));
    let attempts = 0;
    const e = await withTransaction(client, async (tx) => {
      attempts++;
      await tx.write('/forbidden', 'x');
    }).catch((x: unknown) => x);
    expect((e as XsError).code).toBe('EACCES');
    expect(attempts).toBe(1);
    expect(ends()).toEqual(['F1']);
  });

  it('aborts on an error thrown by the body itself', async () => {
    const boom = new Error('body failed');
    await expect(withTransaction(client, async () => Promise.reject(boom))).rejects.toBe(boom);
    expect(ends()).toEqual(['F1']);
  });

  it('does not retry a failed commit with another error', async () => {
    commits = ['ENOSPC'];
    const e = await withTransaction(client, async () => 'x').catch((x: unknown) => x);
    expect((e as XsError).code).toBe('ENOSPC');
    expect(ends()).toEqual(['T1']);
  });

  it('aborts and retries when the body meets EAGAIN', async () => {
    let reads = 0;
    fake.handler = (req) => (req.header.type === Op.READ && reads++ === 0 ? req.error('EAGAIN') : daemon(req));
    expect(await withTransaction(client, (tx) => tx.read('/x'))).toBe('read in tx 2');
    expect(ends()).toEqual(['F1', 'T2']);
  });
});
