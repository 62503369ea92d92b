/**
 * A guest's load for the latency tests of issue 18 (test/attacks/fair-under-attack.test.ts), made
 * by a child process at nice 10 rather than by the test's own thread.
 *
 * A real guest's requests come from its own virtual CPUs; here the attacking clients share this
 * machine's 2 cores with the daemon and with the "others" whose latency is measured. Driven from
 * the test's thread (through `Wire`: a copy of every frame kept, each reply made a string, a
 * vitest `expect` per reply) they took 2.6 s of CPU in the 3 s of the listings attack and the
 * daemon 1.2 s, and `perf sched timehist` showed the daemon runnable but waiting for a CPU more
 * than 2 ms 27 times (up to 11.5 ms, while the test process's GC threads ran beside its main
 * thread) and the readers up to 14.6 ms: time the readers counted against the daemon (the CI
 * failure of that test, p99 10.08 ms against 10). At nice 10 the scheduler serves the daemon and
 * the readers first and gives the attacker what they leave: in the same attack the daemon then
 * ran 2.5 s of the 3 s and waited more than 2 ms 7 times. The tests check that the daemon was
 * kept busy (`cpuMeter`), so that a starved attacker cannot pass for a fair daemon.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Op } from '../../protocol/index.js';

/** What the attacker does on each of its connections, round after round, until stopped. */
export type AttackPlan =
  /** DIRECTORY `path` (E2BIG) and the next DIRECTORY_PART page, pipelined; a walk restarts at the end. */
  | { kind: 'page'; socket: string; connections: number; path: string }
  /** `batch` pipelined WRITEs of `path`, value `<connection>-<round>-<i>`. */
  | { kind: 'write'; socket: string; connections: number; path: string; batch: number };

export interface AttackCounts {
  /** Requests answered. */
  answered: number;
  /** Replies by kind: `OK`, `E2BIG`, `page`, or an error name; unexpected ones say so. */
  replies: Record<string, number>;
  /** Whole walks through a listing (kind `page`). */
  walks: number;
  /** Connections the daemon closed under the attacker. */
  closed: number;
  /** Kind `write`: the value of the last write answered OK on the first connection. */
  last?: string;
}

export interface RunningAttack {
  /** Stops the attacker after its rounds in flight; what it counted. */
  stop(): Promise<AttackCounts>;
}

/** Starts `plan` in a child process at nice 10; resolves once every connection is open. */
export async function startAttack(plan: AttackPlan): Promise<RunningAttack> {
  const child = spawn('nice', ['-n', '10', process.execPath, '-e', ATTACKER, JSON.stringify({ ...plan, op: Op })], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString('utf8')));
  // `exit`, or `error` when it could not be started (no `nice`): either way it is over.
  const exited = new Promise<number | string | null>((res) => {
    child.once('exit', (code) => res(code));
    child.once('error', (e) => res(e.message));
  });
  // The first line says every connection is open (or the child failed before that).
  await new Promise<void>((res, rej) => {
    const ready = (): void => {
      if (out.includes('\n')) {
        child.stdout!.off('data', ready);
        res();
      }
    };
    child.stdout!.on('data', ready);
    void exited.then((why) => rej(new Error(`attacker ended (${why}) before connecting: ${out}`)));
  });
  return {
    stop: async () => {
      child.stdin!.end('stop\n');
      const why = await exited;
      const last = out.trim().split('\n').at(-1)!;
      if (why !== 0) throw new Error(`attacker ended (${why}): ${out}`);
      return JSON.parse(last) as AttackCounts;
    },
  };
}

/** How busy process `pid` was between two readings: CPU seconds used (user + system) per second. */
export function cpuMeter(pid: number): () => number {
  const ticks = (): number => {
    // /proc/<pid>/stat: fields 14 and 15 (utime, stime) after the `(comm)`, in clock ticks (100/s).
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  };
  const t0 = performance.now();
  const c0 = ticks();
  return () => (ticks() - c0) / 100 / ((performance.now() - t0) / 1000);
}

/** The attacker (plain JS: `node -e` runs it as is); the message types come in `plan.op` (protocol `Op`). */
const ATTACKER = `
const net = require('node:net');
const plan = JSON.parse(process.argv[1]);
const op = plan.op;
const counts = { answered: 0, replies: {}, walks: 0, closed: 0 };
let running = true;
process.stdin.on('data', () => { running = false; });
process.stdin.on('end', () => { running = false; });
const count = (k) => { counts.replies[k] = (counts.replies[k] || 0) + 1; };

function frame(type, reqId, payload) {
  const body = Buffer.from(payload, 'latin1');
  const f = Buffer.allocUnsafe(16 + body.length);
  f.writeUInt32LE(type, 0); f.writeUInt32LE(reqId, 4); f.writeUInt32LE(0, 8); f.writeUInt32LE(body.length, 12);
  body.copy(f, 16);
  return f;
}

/** One connection: send(bytes, n) resolves with the next n replies as [type, payload]. */
function open() {
  return new Promise((resolve, reject) => {
    const s = net.connect(plan.socket);
    let buf = Buffer.alloc(0);
    let want = 0; let got = []; let done;
    s.on('data', (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 16 && buf.length >= 16 + buf.readUInt32LE(12)) {
        const len = buf.readUInt32LE(12);
        got.push([buf.readUInt32LE(0), buf.subarray(16, 16 + len)]);
        buf = buf.subarray(16 + len);
        if (got.length === want) { const d = done, g = got; got = []; want = 0; done = undefined; d(g); }
      }
    });
    s.once('error', reject);
    s.once('close', () => { if (done) { counts.closed++; const d = done; done = undefined; d(undefined); } });
    s.once('connect', () => resolve({
      send: (bytes, n) => new Promise((res) => { want = n; done = res; s.write(bytes); }),
      close: () => s.destroy(),
    }));
  });
}

function shown(type, payload) {
  if (type === op.ERROR) return payload.toString('latin1').replace(/\\0$/, '');
  return type === op.WRITE && payload.length === 3 && payload.toString('latin1') === 'OK\\0' ? 'OK' : 'type ' + type;
}

async function page(c) {
  const whole = frame(op.DIRECTORY, 1, plan.path + '\\0');
  while (running) {
    for (let offset = 0; running; ) {
      const r = await c.send(Buffer.concat([whole, frame(op.DIRECTORY_PART, 2, plan.path + '\\0' + offset + '\\0')]), 2);
      if (r === undefined) return;
      counts.answered += 2;
      count(shown(r[0][0], r[0][1]));
      const [type, p] = r[1];
      if (type !== op.DIRECTORY_PART) { count(shown(type, p)); break; }
      count('page');
      // gen NUL, then whole name NUL entries; the last page ends with one more NUL.
      if (p.length >= 2 && p[p.length - 1] === 0 && p[p.length - 2] === 0) { counts.walks++; break; }
      const entries = p.length - (p.indexOf(0) + 1);
      if (entries <= 0) { count('empty page'); break; }
      offset += entries;
    }
  }
}

async function write(c, k) {
  for (let round = 0; running; round++) {
    const reqs = [];
    for (let i = 0; i < plan.batch; i++) reqs.push(frame(op.WRITE, i + 1, plan.path + '\\0' + k + '-' + round + '-' + i));
    const r = await c.send(Buffer.concat(reqs), plan.batch);
    if (r === undefined) return;
    counts.answered += r.length;
    for (const [type, p] of r) count(shown(type, p));
    if (k === 0 && shown(r[r.length - 1][0], r[r.length - 1][1]) === 'OK') counts.last = k + '-' + round + '-' + (plan.batch - 1);
  }
}

(async () => {
  const conns = [];
  for (let k = 0; k < plan.connections; k++) conns.push(await open());
  process.stdout.write('connected\\n');
  await Promise.all(conns.map((c, k) => (plan.kind === 'page' ? page(c) : write(c, k))));
  for (const c of conns) c.close();
  process.stdout.write(JSON.stringify(counts) + '\\n');
})().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\\n'); process.exit(2); });
`;
