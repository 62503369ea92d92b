import { Socket } from 'node:net';

/**
 * What a connection reads requests from and writes frames to: the subset of `net.Socket` used
 * here, so that a Unix socket, a WebSocket or an in-process gateway session can each be a client
 * with the same dispatch, permissions, quotas, transactions and watches.
 */
export interface Transport {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (e: Error) => void): unknown;
  write(frame: Buffer): boolean;
  pause(): unknown;
  resume(): unknown;
  readonly writableLength: number;
  /** The buffer is past its high-water mark: 'drain' will come. */
  readonly writableNeedDrain: boolean;
  destroy(error?: Error): unknown;
  /** The Unix socket this transport serves below its streams (transport/socket-transport.ts), if it does. */
  readonly socket?: Socket;
  /**
   * Live update, on a transport that reads below the streams: stop reading at the descriptor until
   * `unsuspend()`, whatever `pause`/`resume` say (nothing is buffered above it to hand out first).
   */
  suspend?(): void;
  unsuspend?(): void;
}

/**
 * `netSocketOf(transport)` is the Unix socket under a transport, or undefined for a gateway client
 * (HTTP, WebSocket): only a socket has a descriptor that live update can hand to the next process.
 */
export function netSocketOf(transport: Transport): Socket | undefined {
  return transport instanceof Socket ? transport : transport.socket;
}
