/**
 * Small clients for the gateway tests: `call()` for HTTP (fetch over TCP), `JsonWs` for the JSON
 * WebSocket protocol (replies by id, events queued in arrival order, the close code and reason).
 */
import { WebSocket, type ClientOptions } from 'ws';

export interface HttpAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** `call(base, method, path, opts)` sends one request; a JSON body when `body` is given. */
export async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; rawBody?: string; authorization?: string } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  let body: string | undefined;
  if (opts.body !== undefined || opts.rawBody !== undefined) {
    headers['content-type'] = 'application/json';
    body = opts.rawBody ?? JSON.stringify(opts.body);
  }
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) parsed = JSON.parse(text);
  return { status: res.status, body: parsed, headers: res.headers };
}

export interface Closed {
  code: number;
  reason: string;
}

/** A JSON-mode WebSocket client. */
export class JsonWs {
  private nextId = 1;
  private readonly pending = new Map<string | number, (reply: any) => void>();
  /** Every message received, in order (replies and events). */
  readonly log: any[] = [];
  private readonly queue: { path: string; token: string }[] = [];
  private waiter: (() => void) | undefined;
  readonly closed: Promise<Closed>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString());
      this.log.push(msg);
      if (msg.event === 'watch') {
        this.queue.push({ path: msg.path, token: msg.token });
        this.waiter?.();
        return;
      }
      const resolve = this.pending.get(msg.id);
      if (resolve !== undefined) {
        this.pending.delete(msg.id);
        resolve(msg);
      }
    });
    this.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
  }

  static open(url: string, opts: ClientOptions & { protocols?: string[] } = {}): Promise<JsonWs> {
    const ws = new WebSocket(url, opts.protocols ?? [], opts);
    return new Promise((res, rej) => {
      ws.once('open', () => res(new JsonWs(ws)));
      ws.once('error', rej);
      ws.once('unexpected-response', (_req, r) => rej(Object.assign(new Error(`HTTP ${r.statusCode}`), { status: r.statusCode })));
    });
  }

  /** `ask(req)` sends a request (an id is added unless given) and resolves with its reply. */
  ask(req: Record<string, unknown>): Promise<any> {
    const id = (req.id as string | number | undefined) ?? this.nextId++;
    const p = new Promise((res) => this.pending.set(id, res));
    this.ws.send(JSON.stringify({ ...req, id }));
    return p;
  }

  /** `ok(req)` is `ask` that fails unless the reply is ok; resolves with its result. */
  async ok(req: Record<string, unknown>): Promise<any> {
    const r = await this.ask(req);
    if (r.ok !== true) throw new Error(`${JSON.stringify(req)} failed: ${JSON.stringify(r)}`);
    return r.result;
  }

  /**
   * The next `n` watch events, as `path token` strings. Gives up after `patienceMs` (a bound
   * against hanging, not a timing assertion) and fails showing what did arrive.
   */
  async events(n: number, patienceMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + patienceMs;
    while (this.queue.length < n) {
      if (Date.now() > deadline) throw new Error(`wanted ${n} events, got ${JSON.stringify(this.queue)}`);
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 100);
      });
    }
    return this.queue.splice(0, n).map((e) => `${e.path} ${e.token}`);
  }

  /** Events received so far and not taken. */
  pendingEvents(): string[] {
    return this.queue.splice(0).map((e) => `${e.path} ${e.token}`);
  }

  close(): void {
    this.ws.close();
  }
}
