import { describe, expect, it } from 'vitest';
import {
  decodeErrorPayload,
  encodeErrorPayload,
  encodeFrame,
  FrameDecoder,
  Op,
  opName,
  parseWatchEvent,
  replyPayload,
  requestPayload,
  writeArgs,
} from './index.js';

describe('protocol public surface', () => {
  it('carries a request, an error reply and a watch event through one stream each way', () => {
    // Client → server: a WRITE whose value holds a NUL, then a WATCH, in one chunk.
    const toServer = new FrameDecoder();
    toServer.push(
      Buffer.concat([
        encodeFrame(Op.WRITE, 7, 3, requestPayload.write('/a', 'x\0y')),
        encodeFrame(Op.WATCH, 8, 0, requestPayload.watch('/a', 'tok')),
      ]),
    );
    const write = toServer.next()!;
    expect(opName(write.header.type)).toBe('WRITE');
    expect(writeArgs(write.payload)).toEqual({ path: '/a', value: 'x\0y' });
    expect(toServer.next()?.header.reqId).toBe(8);

    // Server → client: the error echoes reqId and txId; the event has both 0 (spec §1.2).
    const toClient = new FrameDecoder();
    toClient.push(encodeFrame(Op.ERROR, write.header.reqId, write.header.txId, encodeErrorPayload('EACCES')));
    toClient.push(encodeFrame(Op.WATCH_EVENT, 0, 0, replyPayload.watchEvent('/a', 'tok')));
    const error = toClient.next()!;
    expect(error.header).toEqual({ type: Op.ERROR, reqId: 7, txId: 3, len: 7 });
    expect(decodeErrorPayload(error.payload)).toBe('EACCES');
    expect(parseWatchEvent(toClient.next()!.payload)).toEqual({ path: '/a', token: 'tok' });
  });
});
