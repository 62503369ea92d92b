import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Op, encodeFrame, replyPayload } from '../protocol/index.js';
import { XsError } from '../protocol/index.js';
import { XsClient } from './client.js';
import { ConnectionClosedError, ProtocolError } from './errors.js';
import { FakeXenstored, type FakeRequest } from './testing/fake-xenstored.js';

let fake: FakeXenstored;
let client: XsClient;

beforeEach(async () => {
  fake = await FakeXenstored.start();
  client = await XsClient.connect(fake.path);
});

afterEach(async () => {
  await client.close();
  await fake.close();
});

/** Rejection of `p`, which must reject. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('request multiplexing (req_id)', () => {
  it('matches out-of-order replies to their requests by req_id', async () => {
    const held: FakeRequest[] = [];
    fake.handler = (req) => held.push(req);
    const reads = ['/a', '/b', '/c'].map((p) => client.read(p));
    await fake.received(3);
    const ids = held.map((r) => r.header.reqId);
    expect(new Set(ids).size).toBe(3);
    expect(ids).not.toContain(0);
    // Answer last to first; each value names the path it was read from.
    for (const req of [...held].reverse()) req.reply(`value of ${req.args[0]}`);
    expect(await Promise.all(reads)).toEqual(['value of /a', 'value of /b', 'value of /c']);
  });

  it('sends the transaction id in the header and 0 without one', async () => {
    fake.handler = (req) => req.reply(req.header.type === Op.READ ? 'v' : replyPayload.ok());
    await client.read('/x', 7);
    await client.write('/x', 'v', 9);
    await client.read('/x');
    expect(fake.requests.map((r) => r.header.txId)).toEqual([7, 9, 0]);
  });

  it('fails an oversized request with E2BIG without sending it', async () => {
    const e = await rejection(client.write('/big', Buffer.alloc(5000)));
    expect(e).toBeInstanceOf(XsError);
    expect((e as XsError).code).toBe('E2BIG');
    fake.handler = (req) => req.reply('still usable');
    expect(await client.read('/x')).toBe('still usable');
    expect(fake.ofType(Op.WRITE)).toHaveLength(0);
  });
});

describe('replies', () => {
  it('rejects an ERROR reply with XsError(code)', async () => {
    fake.handler = (req) => req.error('ENOENT');
    const e = await rejection(client.read('/missing'));
    expect(e).toBeInstanceOf(XsError);
    expect((e as XsError).code).toBe('ENOENT');
  });

  it('maps an error name outside the table to EINVAL, as libxenstore does', async () => {
    fake.handler = (req) => req.error('EWHATEVER');
    const e = (await rejection(client.read('/x'))) as XsError;
    expect(e.code).toBe('EINVAL');
    expect(e.message).toContain('EWHATEVER');
  });

  it('treats a reply of another type as a protocol error and closes the connection', async () => {
    const held: FakeRequest[] = [];
    fake.handler = (req) => held.push(req);
    const first = client.read('/a');
    const second = client.read('/b');
    await fake.received(2);
    held[0]!.replyAs(Op.DIRECTORY, replyPayload.list(['x']));
    expect(await rejection(first)).toBeInstanceOf(ProtocolError);
    expect(await rejection(second)).toBeInstanceOf(ProtocolError);
    expect(client.isOpen).toBe(false);
    expect(await rejection(client.read('/c'))).toBeInstanceOf(ProtocolError);
  });

  it('treats a reply to a request that is not in flight as a protocol error', async () => {
    fake.handler = (req) => req.conn.send(encodeFrame(Op.READ, req.header.reqId + 1000, 0, 'stray'));
    expect(await rejection(client.read('/a'))).toBeInstanceOf(ProtocolError);
  });

  it('treats an oversized message from the daemon as a protocol error', async () => {
    fake.handler = (req) => {
      const header = Buffer.alloc(16);
      header.writeUInt32LE(Op.READ, 0);
      header.writeUInt32LE(req.header.reqId, 4);
      header.writeUInt32LE(5000, 12);
      req.conn.send(header);
    };
    expect(await rejection(client.read('/a'))).toBeInstanceOf(ProtocolError);
  });

  it('decodes values as UTF-8 for read and keeps bytes for readBytes', async () => {
    const bytes = Buffer.from([0x68, 0xc3, 0xa9, 0x00, 0xff]);
    fake.handler = (req) => req.reply(bytes);
    expect(await client.readBytes('/v')).toEqual(bytes);
    fake.handler = (req) => req.reply(Buffer.from('héllo ☃', 'utf8'));
    expect(await client.read('/v')).toBe('héllo ☃');
  });

  it('writes strings as UTF-8 and buffers as they are', async () => {
    await client.write('/s', 'é');
    await client.write('/b', Buffer.from([0, 1, 0xff]));
    const [s, b] = fake.ofType(Op.WRITE);
    expect(s!.payload).toEqual(Buffer.from('/s\0\xc3\xa9', 'latin1'));
    expect(b!.payload).toEqual(Buffer.from('/b\0\x00\x01\xff', 'latin1'));
  });

  it('encodes non-ASCII paths as UTF-8 instead of truncating chars to latin1', async () => {
    await client.mkdir('/aŁ');
    expect(fake.ofType(Op.MKDIR)[0]!.payload).toEqual(Buffer.concat([Buffer.from('/aŁ', 'utf8'), Buffer.from([0])]));
  });

  it('answers exists by READ: ENOENT is false, other errors are thrown', async () => {
    fake.handler = (req) => req.reply('x');
    expect(await client.exists('/yes')).toBe(true);
    fake.handler = (req) => req.error('ENOENT');
    expect(await client.exists('/no')).toBe(false);
    fake.handler = (req) => req.error('EACCES');
    expect(((await rejection(client.exists('/hidden'))) as XsError).code).toBe('EACCES');
    expect(fake.requests.every((r) => r.header.type === Op.READ)).toBe(true);
  });

  it('parses the typed replies', async () => {
    fake.handler = (req) => {
      switch (req.header.type) {
        case Op.DIRECTORY:
          return req.reply(replyPayload.list(['a', 'b']));
        case Op.GET_PERMS:
          return req.reply(replyPayload.list(['n0', 'r5']));
        case Op.TRANSACTION_START:
          return req.reply(replyPayload.decimal(42));
        case Op.IS_DOMAIN_INTRODUCED:
          return req.reply(replyPayload.flag(true));
        case Op.GET_DOMAIN_PATH:
          return req.reply(replyPayload.string('/local/domain/3'));
        case Op.GET_QUOTA:
          return req.reply(req.payload.length === 0 ? replyPayload.string('nodes watches') : replyPayload.decimal(1000));
        case Op.CONTROL:
          return req.reply('line one\nline two\0');
        default:
          return req.reply();
      }
    };
    expect(await client.directory('/')).toEqual(['a', 'b']);
    expect(await client.getPerms('/')).toEqual(['n0', 'r5']);
    expect(await client.transactionStart()).toBe(42);
    expect(await client.isDomainIntroduced(3)).toBe(true);
    expect(await client.getDomainPath(3)).toBe('/local/domain/3');
    expect(await client.getQuota()).toEqual(['nodes', 'watches']);
    expect(await client.getQuota('nodes', 3)).toBe(1000);
    expect(await client.control('print', 'hi')).toBe('line one\nline two');
    await client.setPerms('/p', ['n0', 'r5']);
    await client.introduce(3, 12345678901234567890n, 7);
    expect(fake.ofType(Op.SET_PERMS)[0]!.args).toEqual(['/p', 'n0', 'r5']);
    expect(fake.ofType(Op.INTRODUCE)[0]!.args).toEqual(['3', '12345678901234567890', '7']);
    expect(fake.ofType(Op.GET_QUOTA)[1]!.args).toEqual(['3', 'nodes']);
    expect(fake.ofType(Op.CONTROL)[0]!.args).toEqual(['print', 'hi']);
  });

  it('a malformed reply is a protocol error', async () => {
    fake.handler = (req) => req.reply('not OK\0');
    expect(await rejection(client.mkdir('/x'))).toBeInstanceOf(ProtocolError);
    expect(client.isOpen).toBe(false);
  });

  it('falls back to DIRECTORY_PART when DIRECTORY is E2BIG, restarting when the generation changes', async () => {
    let generation = 1;
    fake.handler = (req) => {
      if (req.header.type === Op.DIRECTORY) return req.error('E2BIG');
      const offset = Number(req.args[1]);
      // First pass: chunk at 0, then the directory "changes" (generation 2): restart from 0.
      if (offset === 0) return req.reply(`${generation}\0a\0bb\0`);
      if (offset === 5 && generation === 1) {
        generation = 2;
        return req.reply(`2\0ccc\0\0`);
      }
      return req.reply(`${generation}\0ccc\0\0`);
    };
    expect(await client.directory('/big')).toEqual(['a', 'bb', 'ccc']);
    expect(fake.ofType(Op.DIRECTORY_PART).map((r) => r.args[1])).toEqual(['0', '5', '0', '5']);
  });

  it('keeps E2BIG when the daemon has no DIRECTORY_PART', async () => {
    fake.handler = (req) => req.error(req.header.type === Op.DIRECTORY ? 'E2BIG' : 'ENOSYS');
    expect(((await rejection(client.directory('/big'))) as XsError).code).toBe('E2BIG');
  });
});

describe('watch events', () => {
  /** OK to WATCH, then the registration event, as the daemons do (spec §8.1). */
  const watching = (req: FakeRequest): void => {
    req.reply();
    if (req.header.type === Op.WATCH) req.conn.event(req.args[0]!, req.args[1]!);
  };

  it('routes events to streams by token, starting with the registration event', async () => {
    fake.handler = watching;
    const a = await client.watch('/a', 'tok-a');
    const b = await client.watch('/b', 'tok-b');
    const conn = fake.connections[0]!;
    conn.event('/b/1', 'tok-b');
    conn.event('/zzz', 'nobody'); // no such token: dropped
    conn.event('/a/1', 'tok-a');
    conn.event('/b/2', 'tok-b');
    const ia = a[Symbol.asyncIterator]();
    const ib = b[Symbol.asyncIterator]();
    expect((await ia.next()).value).toEqual({ path: '/a', token: 'tok-a' });
    expect((await ia.next()).value).toEqual({ path: '/a/1', token: 'tok-a' });
    expect((await ib.next()).value).toEqual({ path: '/b', token: 'tok-b' });
    expect((await ib.next()).value).toEqual({ path: '/b/1', token: 'tok-b' });
    expect((await ib.next()).value).toEqual({ path: '/b/2', token: 'tok-b' });
  });

  it('gives each watch a fresh token by default and refuses a token in use', async () => {
    fake.handler = watching;
    const a = await client.watch('/a');
    const b = await client.watch('/a');
    expect(a.token).not.toBe(b.token);
    const e = (await rejection(client.watch('/other', a.token))) as XsError;
    expect(e.code).toBe('EEXIST');
    expect(fake.ofType(Op.WATCH)).toHaveLength(2);
  });

  it('a refused WATCH rejects and routes nothing', async () => {
    fake.handler = (req) => req.error('EINVAL');
    expect(((await rejection(client.watch('bad//path', 't'))) as XsError).code).toBe('EINVAL');
    fake.handler = watching;
    await client.watch('/ok', 't'); // the token is free again
  });

  it('leaving a for-await loop sends UNWATCH with the same path and token', async () => {
    fake.handler = watching;
    const w = await client.watch('/a', 'tok');
    for await (const event of w) {
      expect(event.path).toBe('/a');
      break;
    }
    const [unwatch] = fake.ofType(Op.UNWATCH);
    expect(unwatch!.args).toEqual(['/a', 'tok']);
    expect(w.done).toBe(true);
    await w.close(); // idempotent: no second UNWATCH
    expect(fake.ofType(Op.UNWATCH)).toHaveLength(1);
  });

  it('keeps at most maxQueue events for a slow consumer, dropping the oldest', async () => {
    fake.handler = watching;
    const w = await client.watch('/a', 'tok', { maxQueue: 3 });
    const conn = fake.connections[0]!;
    for (let i = 1; i <= 4; i++) conn.event(`/a/${i}`, 'tok');
    fake.handler = (req) => req.reply('sync');
    await client.read('/sync'); // replies are in order: the events have arrived
    expect(w.dropped).toBe(2); // the registration event and /a/1
    const it = w[Symbol.asyncIterator]();
    const paths = [];
    for (let i = 0; i < 3; i++) paths.push((await it.next()).value?.path);
    expect(paths).toEqual(['/a/2', '/a/3', '/a/4']);
  });

  it('resetWatches ends every stream', async () => {
    fake.handler = watching;
    const w = await client.watch('/a', 'tok');
    await client.resetWatches();
    expect(w.done).toBe(true);
    expect(fake.ofType(Op.RESET_WATCHES)).toHaveLength(1);
  });
});

describe('connection close', () => {
  it('rejects every pending request when the daemon closes the connection', async () => {
    fake.handler = () => {};
    const pending = [client.read('/a'), client.write('/b', 'x')];
    await fake.received(2);
    fake.connections[0]!.socket.destroy();
    for (const p of pending) {
      const e = await rejection(p);
      expect(e).toBeInstanceOf(ConnectionClosedError);
      expect(e.message).toMatch(/closed by xenstored/);
    }
    expect(client.isOpen).toBe(false);
    expect(await rejection(client.read('/c'))).toBeInstanceOf(ConnectionClosedError);
  });

  it('ends watch streams with the error when the connection is lost, after the queued events', async () => {
    fake.handler = (req) => {
      req.reply();
      req.conn.event('/a', 'tok');
    };
    const w = await client.watch('/a', 'tok');
    fake.connections[0]!.socket.destroy();
    const it = w[Symbol.asyncIterator]();
    expect((await it.next()).value?.path).toBe('/a');
    expect(await rejection(it.next())).toBeInstanceOf(ConnectionClosedError);
  });

  it('close() rejects what is in flight and ends streams normally', async () => {
    fake.handler = (req) => {
      if (req.header.type === Op.WATCH) req.reply();
    };
    const w = await client.watch('/a', 'tok');
    const pending = rejection(client.read('/never'));
    await fake.received(2);
    await client.close();
    const e = await pending;
    expect(e).toBeInstanceOf(ConnectionClosedError);
    expect(e.message).toMatch(/closed by the client/);
    expect(await w[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
    await client.close(); // idempotent
  });

  it('connect rejects with the socket error', async () => {
    const e = (await rejection(XsClient.connect(`${fake.path}.missing`))) as NodeJS.ErrnoException;
    expect(e.code).toBe('ENOENT');
  });
});
