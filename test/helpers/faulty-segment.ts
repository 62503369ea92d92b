import { openSegment, type OpenSegment, type SegmentHandle } from '../../server/persistence/index.js';

/**
 * Test support: segments on real files (the daemon's own `openSegment`) whose writes fail as a full or failing disk makes them.
 * `short`: every writev writes at most half of what it is given (and at least one byte);
 * `noSpace`: a writev writes half of what it is given, and the next one throws ENOSPC;
 * `syncFails`: fdatasync throws EIO; `truncateFails`: ftruncate throws EIO (the fault stays until
 * cleared). Counters say how often each call was made.
 */
export class FaultySegments {
  short = false;
  noSpace = false;
  syncFails = false;
  truncateFails = false;
  readonly calls = { writev: 0, truncate: 0, failedWrites: 0 };

  readonly open: OpenSegment = async (path, flags) => {
    const fh = await openSegment(path, flags);
    let wroteHalf = false;
    const handle: SegmentHandle = {
      writev: async (buffers, position) => {
        this.calls.writev++;
        if (this.noSpace && wroteHalf) {
          this.calls.failedWrites++;
          throw errno('ENOSPC');
        }
        if (!this.short && !this.noSpace) return fh.writev(buffers, position);
        wroteHalf = this.noSpace;
        const all = Buffer.concat(buffers);
        return fh.writev([all.subarray(0, Math.max(1, all.length >> 1))], position);
      },
      datasync: async () => {
        if (this.syncFails) throw errno('EIO');
        await fh.datasync();
      },
      truncate: async (len) => {
        this.calls.truncate++;
        if (this.truncateFails) throw errno('EIO');
        wroteHalf = false;
        await fh.truncate(len);
      },
      stat: () => fh.stat(),
      close: () => fh.close(),
    };
    return handle;
  };
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}
