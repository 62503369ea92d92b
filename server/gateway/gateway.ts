import { Op, opName } from '../../protocol/index.js';
import type { Daemon } from '../daemon.js';
import { callerOf, identityKey, type Identity, type Tokens } from './identity.js';
import { Metrics } from './metrics.js';
import { Session, wireError } from './session.js';

/**
 * What the gateway's routes share: the daemon, the tokens, the metrics, and one pooled Session
 * per identity for plain HTTP requests. HTTP requests are one-shot (a batch transaction starts and
 * ends inside one request), so a pooled session never holds a transaction or a watch between
 * requests and can serve every request of its identity.
 */
export class Gateway {
  readonly metrics: Metrics;
  private readonly pool = new Map<string, Session>();

  constructor(
    readonly daemon: Daemon,
    readonly tokens: Tokens,
  ) {
    this.metrics = new Metrics(daemon);
  }

  /** `session(identity)` is the pooled HTTP session of that identity, with its current caller. */
  session(identity: Identity): Session {
    const key = identityKey(identity);
    let s = this.pool.get(key);
    if (s === undefined || s.conn.state !== 'open') {
      s = new Session(this.daemon, 'http', callerOf(identity));
      this.pool.set(key, s);
    }
    if (identity.kind === 'guest') {
      // SET_TARGET may have changed since the session was made (spec §6.5).
      s.conn.caller = callerOf(identity, this.daemon.domains.get(identity.domid)?.target);
    }
    return s;
  }

  /** `run(identity, type, payload, txId, what)` runs one request, counted, throwing an ERROR. */
  run(session: Session, type: number, payload: Buffer, txId = 0, what = ''): Buffer {
    const r = session.call(type, payload, txId);
    if (r.header.type === Op.ERROR) {
      const e = wireError(r.payload, `${opName(type)}${what === '' ? '' : ` ${what}`}`);
      this.metrics.op(opName(type), e.code);
      throw e;
    }
    this.metrics.op(opName(type), 'OK');
    return r.payload;
  }

  /** Ends every pooled session (daemon shutdown). */
  close(): void {
    for (const s of this.pool.values()) s.close();
    this.pool.clear();
  }
}

