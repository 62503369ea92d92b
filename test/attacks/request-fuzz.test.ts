/**
 * Issue 18: a bounded fuzz of the frame decoder and the request parsers, run in CI. From a fixed
 * seed, random requests (every message type, payloads of path characters, NULs, digits, `@`,
 * `|` and arbitrary bytes, random tx ids) go to the daemon over a dom0 and a guest connection;
 * then random raw byte strings, header garbage included, each on a fresh connection. Every request
 * must get exactly one reply of its type or ERROR, with its req_id (spec §1.2), or the connection
 * must be closed (an oversized header, spec §1.3); the daemon must stay up and its store pass
 * CONTROL check. Inputs that once broke something are kept in fuzz-regressions/ (hex) and replayed
 * first.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Op } from '../../protocol/index.js';
import { guestWithHome } from '../helpers/attack.js';
import { sharedDaemon } from '../helpers/shared-daemon.js';
import { frame, Wire } from '../helpers/wire.js';
import { mulberry32 } from '../helpers/prng.js';

const SEED = 0x18f41;
const REQUESTS = 1500;
const RAW = 150;
const REGRESSIONS = join(import.meta.dirname, 'fuzz-regressions');

// Half-sent garbage is closed after 200 ms (`--request-idle-ms`), not the default 30 s.
const shared = sharedDaemon({ args: ['--request-idle-ms', '200'] });

const PIECES = ['/', '/local/domain/', '5', '0', 'a', 'data', '\0', '\0', '@introduceDomain', '@releaseDomain', 'r0', 'n5', 'b7', 'w', 'T', 'F', '-', '99999999999', 'x'.repeat(300), '..', '//'];

function payload(rand: () => number): Buffer {
  const parts: Buffer[] = [];
  const n = Math.floor(rand() * 8);
  for (let i = 0; i < n; i++) {
    if (rand() < 0.15) {
      parts.push(Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256))));
    } else {
      parts.push(Buffer.from(PIECES[Math.floor(rand() * PIECES.length)]!, 'latin1'));
    }
  }
  return Buffer.concat(parts).subarray(0, 4096);
}

/** Sends `bytes` on a fresh connection; resolves when every reply came or the daemon closed it. */
async function sendRaw(socket: string, bytes: Buffer): Promise<void> {
  const w = await Wire.connect(socket);
  await w.sendRaw(bytes).catch(() => undefined);
  // A round trip after the garbage: answered, or the connection is gone (both fine); a partial
  // request swallows it, and is closed after --request-idle-ms.
  await w.ask(Op.GET_DOMAIN_PATH, '0|').catch(() => undefined);
  w.close();
}

describe('fuzz of the frame decoder and request parsers (issue 18)', () => {
  it('replays every kept crash input', async () => {
    const { d, c } = shared;
    const files = readdirSync(REGRESSIONS).filter((f) => f.endsWith('.hex'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = Buffer.from(readFileSync(join(REGRESSIONS, f), 'latin1').trim(), 'hex');
      await sendRaw(d.socket, bytes);
      expect(d.exited(), `${f}\n${d.output()}`).toBeUndefined();
    }
    expect(await c.control('check')).toBe('OK');
  });

  it(`${REQUESTS} random requests from dom0 and a guest, then ${RAW} raw byte strings: one reply each, the daemon stays up`, async () => {
    const { d, c } = shared;
    const rand = mulberry32(SEED);
    const guest = await guestWithHome(d, c, 5);
    const dom0 = await d.connect();
    const types = Object.values(Op).filter((t) => t !== Op.CONTROL && t !== Op.WATCH_EVENT && t !== Op.ERROR);
    const tally: Record<string, number> = {};
    for (let i = 0; i < REQUESTS; i++) {
      const w = rand() < 0.5 ? guest : dom0;
      // Mostly real types, sometimes any 16-bit number; CONTROL only from the guest (EACCES):
      // dom0's could start a live update.
      let type = rand() < 0.9 ? types[Math.floor(rand() * types.length)]! : Math.floor(rand() * 65536);
      if (type === Op.CONTROL && w === dom0) type = Op.READ;
      const txId = rand() < 0.8 ? 0 : Math.floor(rand() * 4);
      const body = payload(rand);
      const reqId = 1 + i;
      const r = await w.request(type, body, { reqId, txId });
      expect(r.reqId, `request ${i}: ${type} ${body.toString('hex')}`).toBe(reqId);
      expect([type, Op.ERROR], `request ${i}: ${type} ${body.toString('hex')}`).toContain(r.type);
      const k = r.type === Op.ERROR ? r.payload.toString('latin1').replace(/\0$/, '') : 'ok';
      tally[k] = (tally[k] ?? 0) + 1;
    }
    console.log(`[request fuzz] ${REQUESTS} requests, seed ${SEED}: ${JSON.stringify(tally)}`);
    // The fuzz reached the parsers and the store, not just one error.
    expect(tally['ok']).toBeGreaterThan(REQUESTS / 20);
    expect(tally['EINVAL']).toBeGreaterThan(0);
    for (let i = 0; i < RAW; i++) {
      const n = Math.floor(rand() * 64);
      const bytes = Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
      // Half of them behind a valid header of a random type, so that the payload is parsed.
      const input = rand() < 0.5 ? bytes : frame(Math.floor(rand() * 27), bytes, 1, 0);
      await sendRaw(rand() < 0.5 ? d.socket : d.domainSocket(5), input);
    }
    expect(d.exited(), d.output()).toBeUndefined();
    expect(await c.control('check')).toBe('OK');
    expect(await c.ask(Op.WRITE, '/after/fuzz|alive')).toBe('OK|');
    guest.close();
    dom0.close();
  });
});
