#!/usr/bin/env node
/**
 * The floor of any xenstored written on Node: a server that speaks the wire protocol on a Unix
 * socket the way nxenstored does (same frame decoder, same socket I/O, same per-turn flush) but
 * keeps no store and checks nothing. It answers TRANSACTION_START with a fresh id, READ with a
 * fixed value, DIRECTORY with no names and everything else with OK. Never a product: a benchmark
 * reference, so that a load's figures can say how much of nxenstored's cost per request is the
 * runtime's and how much is ours (bench/RESULTS.md, "The Node floor").
 *
 *     node dist/bench/null-xenstored.js --socket PATH [--socket-io direct|stream]
 */
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { encodeFrame, FrameDecoder, Op } from '../protocol/index.js';
import { socketTransport } from '../server/transport/index.js';

const { values } = parseArgs({
  options: { socket: { type: 'string' }, 'socket-io': { type: 'string', default: 'direct' } },
});
if (values.socket === undefined) {
  process.stderr.write('usage: null-xenstored.js --socket PATH [--socket-io direct|stream]\n');
  process.exit(2);
}

const OK = Buffer.from('OK\0', 'latin1');
const VALUE = Buffer.from('0123456789abcdef', 'latin1');
const NONE = Buffer.alloc(0);

function answer(type: number, nextTx: () => number): Buffer {
  switch (type) {
    case Op.TRANSACTION_START:
      return Buffer.from(`${nextTx()}\0`, 'latin1');
    case Op.READ:
      return VALUE;
    case Op.DIRECTORY:
      return NONE;
    default:
      return OK;
  }
}

/** Output waits for the end of the event loop's turn, as in server/connection/flush-scheduler.ts. */
const dirty = new Set<{ flush(): void }>();
let scheduled = false;
function later(c: { flush(): void }): void {
  dirty.add(c);
  if (!scheduled) {
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      for (const x of dirty) x.flush();
      dirty.clear();
    });
  }
}

function serve(socket: Socket): void {
  const t = socketTransport(socket, values['socket-io'] === 'direct');
  const decoder = new FrameDecoder();
  let tx = 0;
  const out: Buffer[] = [];
  const conn = {
    flush(): void {
      if (out.length === 0) return;
      t.write(out.length === 1 ? out[0]! : Buffer.concat(out));
      out.length = 0;
    },
  };
  t.on('data', (chunk: Buffer) => {
    decoder.push(chunk);
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
      const { type, reqId, txId } = f.header;
      out.push(encodeFrame(type, reqId, txId, answer(type, () => ++tx)));
    }
    if (decoder.error !== undefined) t.destroy();
    else later(conn);
  });
  t.on('error', () => undefined);
  t.on('close', () => dirty.delete(conn));
}

rmSync(values.socket, { force: true });
createServer(serve).listen(values.socket);
process.on('SIGTERM', () => process.exit(0));
