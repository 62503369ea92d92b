import { opName } from '../../protocol/index.js';
import type { Daemon } from '../daemon.js';
import type { AnonymousAccess } from './access.js';
import { callerOf, identityKey, type Identity, type Tokens } from './identity.js';
import { Metrics } from './metrics.js';
import { answerError, payloadOf, Session, type RequestAnswer } from './session.js';

/**
 * What the gateway's routes share: the daemon, the tokens, what a client without credentials may
 * do (`anonymous`, access.ts), the metrics, and one pooled Session
 * per identity for plain HTTP requests. HTTP requests are one-shot (a batch transaction starts and
 * ends inside one request), so a pooled session never holds a transaction or a watch between
 * requests and can serve every request of its identity.
 */
export class Gateway {
  readonly metrics: Metrics;
  private readonly pool = new Map<string, Session>();
  private readonly unhook: () => void;

  constructor(
    readonly daemon: Daemon,
    readonly tokens: Tokens,
    readonly anonymous: AnonymousAccess = 'none',
  ) {
    this.metrics = new Metrics(daemon);
    // A released domain's tokens die with it: a later domain with the same id must not act
    // through them (spec §6.6, XSA-322), as it may not through the old domain's connections.
    this.unhook = daemon.onRelease((domid) => tokens.revokeDomain(domid));
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
      s.conn.caller = callerOf(identity, this.daemon.domains.get(identity.domid));
    }
    return s;
  }

  /**
   * `check(answer, type, what)` is the payload of a reply, or throws the XsError of an error
   * answer (`what` names the request in the message); counts the outcome either way.
   */
  check(answer: RequestAnswer, type: number, what = ''): Buffer {
    if (answer.kind === 'error') {
      this.metrics.op(opName(type), answer.code);
      throw answerError(answer.code, `${opName(type)}${what === '' ? '' : ` ${what}`}`);
    }
    this.metrics.op(opName(type), 'OK');
    return payloadOf(answer);
  }

  /** `run(session, type, payload, txId, what)` sends one request and resolves with `check` of it. */
  async run(session: Session, type: number, payload: Buffer, txId = 0, what = ''): Promise<Buffer> {
    return this.check(await session.request(type, payload, txId), type, what);
  }

  /**
   * `withSession(identity, fn)` runs `fn` on a session of its own, closed afterwards: for
   * requests that hold a transaction across replies, so that concurrent ones of one identity do
   * not share a connection's transaction quota.
   */
  async withSession<T>(identity: Identity, fn: (s: Session) => Promise<T>): Promise<T> {
    const domain = identity.kind === 'guest' ? this.daemon.domains.get(identity.domid) : undefined;
    const s = new Session(this.daemon, 'http', callerOf(identity, domain));
    try {
      return await fn(s);
    } finally {
      s.close();
    }
  }

  /** Ends every pooled session (daemon shutdown). */
  close(): void {
    this.unhook();
    for (const s of this.pool.values()) s.close();
    this.pool.clear();
  }
}

