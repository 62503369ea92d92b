/**
 * Transport and framing over the real socket (spec §1, §2, §3; §16 checks 1–6): header echo,
 * pipelining, unknown types, NUL rules, binary values, path validation, oversized and empty
 * requests, requests split across writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { runScenario } from '../helpers/scenario.js';
import { enc, frame, header, show, Wire } from '../helpers/wire.js';

let d: RunningDaemon;
let c: Wire;

beforeAll(async () => {
  d = await startDaemon();
  c = await d.connect();
});

afterAll(async () => {
  await d?.stop();
});

const tick = () => new Promise((r) => setTimeout(r, 2));

describe('header echo and ordering (§1.2, §16.1)', () => {
  it('echoes distinct non-zero req_ids, including the largest u32', async () => {
    for (const reqId of [1, 0x7fffffff, 0x80000000, 0xffffffff, 12345]) {
      const r = await c.request(Op.GET_DOMAIN_PATH, '0|', { reqId });
      expect(r.reqId).toBe(reqId);
      expect(r.type).toBe(Op.GET_DOMAIN_PATH);
      expect(r.txId).toBe(0);
    }
  });

  it('echoes req_id on error replies, and the reply type is ERROR', async () => {
    const r = await c.request(Op.READ, '/framing/missing|', { reqId: 777 });
    expect(r.type).toBe(Op.ERROR);
    expect(r.reqId).toBe(777);
    expect(show(r)).toBe('ENOENT');
    expect(r.payload.toString('latin1')).toBe('ENOENT\0');
  });

  it('echoes tx_id inside a transaction, on success and on error', async () => {
    const tx = await c.txStart();
    expect(tx).toBeGreaterThan(0);
    const ok = await c.request(Op.WRITE, '/framing/tx|v', { txId: tx, reqId: 31 });
    expect([ok.type, ok.reqId, ok.txId, show(ok)]).toEqual([Op.WRITE, 31, tx, 'OK|']);
    const err = await c.request(Op.READ, '/framing/nope|', { txId: tx, reqId: 32 });
    expect([err.type, err.reqId, err.txId, show(err)]).toEqual([Op.ERROR, 32, tx, 'ENOENT']);
    const end = await c.request(Op.TRANSACTION_END, 'T|', { txId: tx, reqId: 33 });
    expect([end.type, end.reqId, end.txId, show(end)]).toEqual([Op.TRANSACTION_END, 33, tx, 'OK|']);
  });

  it('echoes an unknown tx_id in the ENOENT reply', async () => {
    const r = await c.request(Op.READ, '/|', { txId: 0xfffffffe, reqId: 9 });
    expect([r.type, r.reqId, r.txId, show(r)]).toEqual([Op.ERROR, 9, 0xfffffffe, 'ENOENT']);
  });

  it('answers pipelined requests (one write of 200 frames) in order', async () => {
    await c.write('/framing/pipe', 'x');
    const frames: Buffer[] = [];
    const replies = [];
    for (let i = 0; i < 200; i++) {
      const reqId = 5000 + i;
      const kind = i % 4;
      if (kind === 0) frames.push(frame(Op.WRITE, `/framing/pipe/n${i}|v${i}`, reqId));
      else if (kind === 1) frames.push(frame(Op.READ, `/framing/pipe/n${i - 1}|`, reqId));
      else if (kind === 2) frames.push(frame(Op.READ, `/framing/pipe/absent${i}|`, reqId));
      else frames.push(frame(Op.GET_DOMAIN_PATH, `${i}|`, reqId));
      replies.push(c.awaitReply());
    }
    await c.sendRaw(Buffer.concat(frames));
    const got = await Promise.all(replies);
    got.forEach((r, i) => {
      expect(r.reqId, `reply ${i}`).toBe(5000 + i);
      const kind = i % 4;
      const want = kind === 0 ? 'OK|' : kind === 1 ? `v${i - 1}` : kind === 2 ? 'ENOENT' : `/local/domain/${i}|`;
      expect(show(r), `reply ${i}`).toBe(want);
    });
  });

  it('keeps requests of several concurrent connections apart', async () => {
    const conns = await Promise.all(Array.from({ length: 8 }, () => d.connect()));
    await Promise.all(
      conns.map(async (w, k) => {
        const pending = [];
        for (let i = 0; i < 25; i++) pending.push(w.write(`/framing/conc/c${k}/n${i}`, `${k}:${i}`));
        await Promise.all(pending);
        for (let i = 0; i < 25; i += 6) expect(await w.read(`/framing/conc/c${k}/n${i}`)).toBe(`${k}:${i}`);
      }),
    );
    expect((await c.dir('/framing/conc')).length).toBe(8);
    for (const w of conns) w.close();
  });
});

describe('order of checks (§5: type, privilege, transaction, arguments, path)', () => {
  it('scenario', async () => {
    expect(show(await c.request(20, '', { txId: 999 }))).toBe('ENOSYS');
    await runScenario({ c }, [
      ['c', 999, 'READ', '/a//b|', 'ENOENT'],
      ['c', 999, 'READ', '', 'ENOENT'],
      ['c', 999, 'GET_DOMAIN_PATH', 'x|', 'ENOENT'],
      ['c', 999, 'CONTROL', 'nonsense|', 'ENOENT'],
      ['c', 0, 'READ', '/a//b|', 'EINVAL'],
    ]);
  });
});

describe('unknown and server-only types (§1.3, §2, §16.2)', () => {
  for (const type of [20, 27, 100, 65535, 0x10000, 0xffffffff, Op.WATCH_EVENT, Op.ERROR]) {
    it(`type ${type} is ENOSYS and the connection stays usable`, async () => {
      const r = await c.request(type, '/|', { reqId: 4242 });
      expect([r.type, r.reqId, show(r)]).toEqual([Op.ERROR, 4242, 'ENOSYS']);
      expect(await c.ask(Op.GET_DOMAIN_PATH, '3|')).toBe('/local/domain/3|');
    });
  }
});

describe('payload NUL rules and values (§2 notes, §7.1, §7.2, §16.3, §16.4)', () => {
  it('scenario', async () => {
    await runScenario({ c }, [
      ['c', 0, 'WRITE', '/framing/v|hello', 'OK|'],
      ['c', 0, 'READ', '/framing/v|', 'hello'],
      // READ without its NUL, with two strings, with trailing bytes: EINVAL.
      ['c', 0, 'READ', '/framing/v', 'EINVAL'],
      ['c', 0, 'READ', '/framing/v|/framing/v|', 'EINVAL'],
      ['c', 0, 'READ', '/framing/v|junk', 'EINVAL'],
      ['c', 0, 'DIRECTORY', '/framing', 'EINVAL'],
      ['c', 0, 'GET_PERMS', '/framing/v', 'EINVAL'],
      ['c', 0, 'MKDIR', '/framing/m', 'EINVAL'],
      ['c', 0, 'RM', '/framing/v', 'EINVAL'],
      // WRITE without any NUL has no path: EINVAL; an empty value is fine.
      ['c', 0, 'WRITE', '/framing/v', 'EINVAL'],
      ['c', 0, 'WRITE', '/framing/empty|', 'OK|'],
      ['c', 0, 'READ', '/framing/empty|', ''],
      // A leaf lists no children: zero-length payload.
      ['c', 0, 'DIRECTORY', '/framing/v|', ''],
      ['c', 0, 'GET_DOMAIN_PATH', '7', 'EINVAL'],
      ['c', 0, 'TRANSACTION_END', 'T|', 'ENOENT'],
    ]);
  });

  it('READ of a leaf and DIRECTORY of a leaf: no trailing NUL, zero-length list', async () => {
    await c.write('/framing/leaf', 'abc');
    const r = await c.request(Op.READ, '/framing/leaf|');
    expect(r.payload).toEqual(Buffer.from('abc'));
    const l = await c.request(Op.DIRECTORY, '/framing/leaf|');
    expect(l.type).toBe(Op.DIRECTORY);
    expect(l.payload.length).toBe(0);
  });

  it('a value with embedded NULs and every byte value round-trips byte-exact', async () => {
    const value = Buffer.alloc(512);
    for (let i = 0; i < value.length; i++) value[i] = (i * 7) % 256;
    value[0] = 0;
    value[value.length - 1] = 0;
    await c.write('/framing/bin', value);
    const r = await c.request(Op.READ, '/framing/bin|');
    expect(r.payload.equals(value)).toBe(true);
    await c.write('/framing/nuls', Buffer.from('a\0b\0\0'));
    expect((await c.request(Op.READ, '/framing/nuls|')).payload).toEqual(Buffer.from('a\0b\0\0'));
  });

  it('a privileged WRITE of exactly 4096 payload bytes is accepted and read back', async () => {
    const path = '/framing/max';
    const value = Buffer.alloc(4096 - path.length - 1, 0x61);
    expect(await c.ask(Op.WRITE, Buffer.concat([enc(`${path}|`), value]))).toBe('OK|');
    expect((await c.request(Op.READ, `${path}|`)).payload.equals(value)).toBe(true);
  });
});

describe('relative paths from a socket (§3.2, §16.5)', () => {
  it('resolve under /local/domain/0', async () => {
    await runScenario({ c }, [
      ['c', 0, 'WRITE', 'framing-rel/x|1', 'OK|'],
      ['c', 0, 'READ', '/local/domain/0/framing-rel/x|', '1'],
      ['c', 0, 'DIRECTORY', 'framing-rel|', 'x|'],
      ['c', 0, 'WRITE', '/local/domain/0/framing-rel/y|2', 'OK|'],
      ['c', 0, 'READ', 'framing-rel/y|', '2'],
      ['c', 0, 'RM', 'framing-rel/x|', 'OK|'],
      ['c', 0, 'READ', '/local/domain/0/framing-rel/x|', 'ENOENT'],
    ]);
  });
});

describe('invalid paths (§3.1, §3.3, XSA-481, §16.6)', () => {
  const long = `/framing/${'x'.repeat(2048)}`;
  const bad = ['/a//b', '/a/', '/a b', '', '/a/./b', '/a/..', '/a\tb', '/é', 'a//b', long, '/local/domain/', '//', '@'];
  for (const p of bad) {
    it(`${JSON.stringify(p.length > 40 ? `${p.slice(0, 20)}…(${p.length})` : p)} is EINVAL for every path op`, async () => {
      for (const [op, payload] of [
        [Op.READ, `${p}|`],
        [Op.WRITE, `${p}|v`],
        [Op.MKDIR, `${p}|`],
        [Op.RM, `${p}|`],
        [Op.DIRECTORY, `${p}|`],
        [Op.GET_PERMS, `${p}|`],
        [Op.SET_PERMS, `${p}|n0|`],
        [Op.DIRECTORY_PART, `${p}|0|`],
      ] as const) {
        expect(await c.ask(op, Buffer.from(payload.replaceAll('|', '\0'), 'latin1')), `${op} ${p.slice(0, 30)}`).toBe('EINVAL');
      }
      if (p !== '' && p !== '@') expect(await c.ask(Op.WATCH, Buffer.from(`${p}\0tok\0`, 'latin1'))).toBe('EINVAL');
    });
  }

  it('the daemon is still serving after /local/domain/ (XSA-481 crashed cxenstored)', async () => {
    expect(await c.ask(Op.READ, '/local/domain/|')).toBe('EINVAL');
    expect(await c.ask(Op.WRITE, '/local/domain/|x')).toBe('EINVAL');
    expect(await c.ask(Op.READ, '/local|')).toBe('');
  });

  it('path length: 2048 bytes is the limit outside /local/domain/<N>/, measured after the prefix inside', async () => {
    const ok = `/framing/${'y'.repeat(2048 - '/framing/'.length)}`;
    expect(ok.length).toBe(2048);
    expect(await c.ask(Op.WRITE, `${ok}|v`)).toBe('OK|');
    expect(await c.ask(Op.WRITE, `${ok}z|v`)).toBe('EINVAL');
    // XSA-323: under /local/domain/<N>/ only the part after the prefix counts.
    const rel = 'r'.repeat(2048);
    expect(await c.ask(Op.WRITE, `${rel}|v`)).toBe('OK|');
    expect(await c.ask(Op.READ, `/local/domain/0/${rel}|`)).toBe('v');
    expect(await c.ask(Op.WRITE, `${rel}s|v`)).toBe('EINVAL');
    expect(await c.ask(Op.WRITE, `/local/domain/12345/${rel}|v`)).toBe('OK|');
    expect(await c.ask(Op.RM, `/local/domain/12345|`)).toBe('OK|');
    expect(await c.ask(Op.RM, `${rel}|`)).toBe('OK|');
  });

  it('valid components may hold letters, digits, -, _ and @', async () => {
    await runScenario({ c }, [
      ['c', 0, 'WRITE', '/framing/A-z_0@9/x@|v', 'OK|'],
      ['c', 0, 'READ', '/framing/A-z_0@9/x@|', 'v'],
      ['c', 0, 'DIRECTORY', '/framing/A-z_0@9|', 'x@|'],
      ['c', 0, 'WRITE', '/framing/-|v', 'OK|'],
      ['c', 0, 'WRITE', '/framing/_|v', 'OK|'],
      ['c', 0, 'RM', '/framing/A-z_0@9|', 'OK|'],
    ]);
  });

  it('special @ names are not tree paths', async () => {
    await runScenario({ c }, [
      ['c', 0, 'READ', '@introduceDomain|', 'EINVAL'],
      ['c', 0, 'WRITE', '@releaseDomain|x', 'EINVAL'],
      ['c', 0, 'MKDIR', '@foo|', 'EINVAL'],
      ['c', 0, 'SET_PERMS', '@foo|n0|', 'EINVAL'],
      ['c', 0, 'GET_PERMS', '@releaseDomain|', 'n0|'],
      ['c', 0, 'GET_PERMS', '@introduceDomain|', 'n0|'],
    ]);
  });
});

describe('malformed streams (§1.3)', () => {
  it('a header announcing more than 4096 bytes closes that connection only', async () => {
    const bad = await d.connect();
    const other = await d.connect();
    await bad.sendRaw(Buffer.concat([header(Op.WRITE, 1, 0, 4097), Buffer.alloc(64, 0x61)]));
    await bad.closed;
    expect(bad.isOpen).toBe(false);
    expect(await other.ask(Op.GET_DOMAIN_PATH, '1|')).toBe('/local/domain/1|');
    const huge = await d.connect();
    await huge.sendRaw(header(Op.READ, 2, 0, 0xffffffff));
    await huge.closed;
    expect(await other.ask(Op.READ, '/framing/v|')).toBe('hello');
  });

  it('a request delivered one byte per write is answered', async () => {
    const w = await d.connect();
    const bytes = Buffer.concat([frame(Op.WRITE, '/framing/split|bytewise', 99), frame(Op.READ, '/framing/split|', 100)]);
    const r1 = w.awaitReply();
    const r2 = w.awaitReply();
    for (let i = 0; i < bytes.length; i++) {
      await w.sendRaw(bytes.subarray(i, i + 1));
      await tick();
    }
    expect([(await r1).reqId, show(await r1)]).toEqual([99, 'OK|']);
    expect([(await r2).reqId, show(await r2)]).toEqual([100, 'bytewise']);
    w.close();
  });

  it('a header split from its payload is answered once the payload arrives', async () => {
    const f = frame(Op.READ, '/framing/split|', 5);
    const r = c.awaitReply();
    await c.sendRaw(f.subarray(0, 10));
    await tick();
    await c.sendRaw(f.subarray(10, 16));
    await tick();
    await c.sendRaw(f.subarray(16));
    expect(show(await r)).toBe('bytewise');
  });

  it('len = 0 requests are answered at once (oxenstored stalls, spec §1.3)', async () => {
    const reads = c.awaitReply();
    await c.sendRaw(header(Op.READ, 61, 0, 0));
    expect([(await reads).reqId, show(await reads)]).toEqual([61, 'EINVAL']);
    const start = c.awaitReply();
    await c.sendRaw(header(Op.TRANSACTION_START, 62, 0, 0));
    const s = await start;
    expect(s.type).toBe(Op.TRANSACTION_START);
    expect(show(s)).toMatch(/^\d+\|$/);
    expect(await c.txEnd(Number(show(s).slice(0, -1)), false)).toBe('OK|');
    const gdp = c.awaitReply();
    await c.sendRaw(header(Op.GET_DOMAIN_PATH, 63, 0, 0));
    expect(show(await gdp)).toBe('EINVAL');
    const reset = c.awaitReply();
    await c.sendRaw(header(Op.RESET_WATCHES, 64, 0, 0));
    expect(show(await reset)).toBe('OK|');
  });

  it('a client that disconnects in the middle of a frame does not disturb the daemon', async () => {
    for (let i = 0; i < 5; i++) {
      const w = await d.connect();
      await w.sendRaw(frame(Op.WRITE, '/framing/half|value').subarray(0, 16 + 5));
      w.close();
      await w.closed;
    }
    expect(await c.ask(Op.READ, '/framing/half|')).toBe('ENOENT');
  });

  it('the daemon is alive and its store consistent after all of this', async () => {
    expect(await c.control('check')).toBe('OK');
    expect(d.exited()).toBeUndefined();
  });
});
