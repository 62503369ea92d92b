/**
 * `npm run bench:soak [-- --seconds=N --baseline=N]`: minutes of hostile and normal load together
 * (issue 18). First the normal load alone for `--baseline` seconds (the same run's reference:
 * this machine is shared and noisy), then with four guests attacking at once for `--seconds`:
 * - a watcher that never reads (domain 7: 128 watches while a dom0 client writes under them),
 * - slow loris (50 dom0-socket connections a second, half a header each, up to 1,000 open),
 * - listings (domain 9: 8 connections paging through a 10,000-child directory),
 * - plain writes (domain 5: 4 connections rewriting the node dom0's transactions read).
 * The normal load: dom0 reading every 10 ms, dom0 transactions over the node domain 5 rewrites,
 * and guest 8 writing its own node every 10 ms and watching it (reading every event).
 * Printed, for the baseline and the attack: normal clients' throughput and p50/p99/max latency,
 * the most retries of one dom0 transaction, the daemon's longest event-loop turn (CONTROL loop),
 * its peak RSS (VmHWM), the log bytes it wrote, events dropped, and what the normal clients lost
 * (writes not read back, watch events not received): nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeFrame, FrameDecoder, Op } from '../protocol/index.js';
import { option } from './cli-option.js';

const SECONDS = Number(option('seconds', '120'));
const BASELINE = Number(option('baseline', '20'));
const DAEMON = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'nxenstored.js');

interface Reply {
  type: number;
  payload: Buffer;
}

/** A minimal pipelining client: each request resolves with its reply; events go to `onEvent`. */
class Client {
  private readonly decoder = new FrameDecoder();
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private nextId = 1;
  onEvent: (payload: Buffer) => void = () => undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let f = this.decoder.next(); f !== undefined; f = this.decoder.next()) {
        if (f.header.type === Op.WATCH_EVENT) {
          this.onEvent(f.payload);
          continue;
        }
        const w = this.waiting.get(f.header.reqId);
        this.waiting.delete(f.header.reqId);
        w?.({ type: f.header.type, payload: f.payload });
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  static open(path: string): Promise<Client> {
    return new Promise((res, rej) => {
      const s = connect(path);
      s.once('connect', () => res(new Client(s)));
      s.once('error', rej);
    });
  }

  static async patiently(path: string): Promise<Client> {
    for (let i = 0; ; i++) {
      try {
        return await Client.open(path);
      } catch (e) {
        if (i > 50 || (e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await sleep(20);
      }
    }
  }

  request(type: number, payload: string, txId = 0): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((res) => {
      this.waiting.set(id, res);
      this.socket.write(encodeFrame(type, id, txId, Buffer.from(payload.replaceAll('|', '\0'), 'latin1')));
    });
  }

  async ok(type: number, payload: string, txId = 0): Promise<string> {
    const r = await this.request(type, payload, txId);
    const text = r.payload.toString('latin1');
    if (r.type === Op.ERROR) throw new Error(`${type} ${payload}: ${text}`);
    return text;
  }

  close(): void {
    this.socket.destroy();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

/** The normal clients and what they saw. */
class Normal {
  latencies: number[] = [];
  ops = 0;
  maxRetries = 0;
  txs = 0;
  written = new Map<string, string>();
  eventsExpected = 0;
  eventsSeen = 0;
  private running = true;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly dom0: Client,
    private readonly dom0tx: Client,
    private readonly g8: Client,
  ) {}

  start(tag: string): void {
    this.running = true;
    this.loops = [
      this.timed(async () => void (await this.dom0.ok(Op.READ, '/normal/dom0|'))),
      this.timed(async (i) => {
        const path = `/local/domain/8/n/k${i % 100}`;
        const v = `${tag}-${i}`;
        await this.g8.ok(Op.WRITE, `${path}|${v}`);
        this.written.set(path, v);
        this.eventsExpected++;
      }),
      (async () => {
        for (let i = 0; this.running; i++) {
          for (let attempt = 0; ; attempt++) {
            const tx = Number((await this.dom0tx.ok(Op.TRANSACTION_START, '|')).replace(/\0$/, ''));
            const x = await this.dom0tx.ok(Op.READ, '/local/domain/5/x|', tx);
            await this.dom0tx.ok(Op.WRITE, `/tool/soak/${i % 100}|${x}`, tx);
            const end = await this.dom0tx.request(Op.TRANSACTION_END, 'T|', tx);
            if (end.type !== Op.ERROR) {
              this.maxRetries = Math.max(this.maxRetries, attempt);
              this.txs++;
              break;
            }
            if (end.payload.toString('latin1') !== 'EAGAIN\0') throw new Error(`commit: ${end.payload.toString('latin1')}`);
          }
          await sleep(10);
        }
      })(),
    ];
  }

  private async timed(step: (i: number) => Promise<void>): Promise<void> {
    for (let i = 0; this.running; i++) {
      const t0 = performance.now();
      await step(i);
      this.latencies.push(performance.now() - t0);
      this.ops++;
      await sleep(10);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

/** The four attackers of issue 18, all at once, until `stop()`. */
function attack(sock: string, dom0w: Client, watcher: Client, listers: Client[], writers: Client[]): { stop(): Promise<number> } {
  let running = true;
  let loris: Client[] = [];
  let opened = 0;
  const loops = [
    (async () => {
      for (let i = 0; running; i++) {
        await Promise.all(Array.from({ length: 100 }, (_, k) => dom0w.request(Op.WRITE, `/local/domain/7/w/x|${i}-${k}`)));
      }
    })(),
    (async () => {
      while (running) {
        loris = loris.filter((c) => !c.closed);
        if (loris.length < 1000) {
          const batch = await Promise.all(Array.from({ length: 50 }, () => Client.patiently(sock)));
          for (const c of batch) c.socket.write(Buffer.from([2, 0, 0, 0, 1, 0, 0, 0]));
          loris.push(...batch);
          opened += batch.length;
        }
        await sleep(1000);
      }
    })(),
    ...listers.map(async (c) => {
      while (running) {
        let offset = 0;
        for (;;) {
          const r = await c.request(Op.DIRECTORY_PART, `/big|${offset}|`);
          const names = r.payload.toString('latin1').split('\0').slice(1);
          if (names.at(-1) === '' && names.at(-2) === '') break;
          offset += names.filter((n) => n !== '').reduce((a, n) => a + n.length + 1, 0);
          if (!running) break;
        }
      }
    }),
    ...writers.map(async (c, k) => {
      for (let i = 0; running; i++) await Promise.all(Array.from({ length: 20 }, (_, j) => c.request(Op.WRITE, `/local/domain/5/x|${k}-${i}-${j}`)));
    }),
  ];
  void watcher;
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      for (const c of loris) c.close();
      return opened;
    },
  };
}

function rssPeak(pid: number): number {
  return Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))![1]) * 1024;
}

async function main(): Promise<void> {
  const rundir = mkdtempSync(join(tmpdir(), 'nxs-soak-'));
  const sock = join(rundir, 'socket');
  const daemon = spawn(process.execPath, [DAEMON, '--rundir', rundir, '--log-format', 'json', '--request-idle-ms', '5000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let logBytes = 0;
  daemon.stdout.on('data', (b: Buffer) => (logBytes += b.length));
  daemon.stderr.on('data', (b: Buffer) => (logBytes += b.length));
  for (let i = 0; !existsSync(sock); i++) {
    if (i > 200) throw new Error('the daemon did not start');
    await sleep(50);
  }
  const dom0 = await Client.open(sock);
  const guest = async (domid: number): Promise<Client> => {
    if (!existsSync(join(rundir, 'domains', String(domid), 'socket'))) {
      await dom0.ok(Op.INTRODUCE, `${domid}|${0x1000 + domid}|${domid + 1}|`);
      await dom0.ok(Op.MKDIR, `/local/domain/${domid}|`);
      await dom0.ok(Op.SET_PERMS, `/local/domain/${domid}|n${domid}|`);
    }
    return Client.patiently(join(rundir, 'domains', String(domid), 'socket'));
  };
  await dom0.ok(Op.WRITE, '/normal/dom0|here');
  const g8 = await guest(8);
  await g8.ok(Op.MKDIR, 'n|');
  await g8.ok(Op.WATCH, 'n|mine|');
  const normal = new Normal(dom0, await Client.open(sock), g8);
  g8.onEvent = (p) => {
    if (p.toString('latin1').startsWith('n/')) normal.eventsSeen++;
  };
  const writer = await guest(5);
  await writer.ok(Op.WRITE, 'x|0');
  const writers = [writer, ...(await Promise.all([1, 2, 3].map(() => guest(5))))];
  const watcher = await guest(7);
  await watcher.ok(Op.MKDIR, 'w|');
  await Promise.all(Array.from({ length: 128 }, (_, i) => watcher.ok(Op.WATCH, `w|t${i}|`)));
  await dom0.ok(Op.MKDIR, '/big|');
  await dom0.ok(Op.SET_PERMS, '/big|n0|r9|');
  for (let i = 0; i < 10_000; i += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, k) => dom0.request(Op.WRITE, `/big/child-${String(i + k).padStart(6, '0')}-with-a-longish-name|`)));
  }
  const listers = [await guest(9), ...(await Promise.all(Array.from({ length: 7 }, () => guest(9))))];
  const dom0w = await Client.open(sock);

  const phase = async (name: string, seconds: number, hostile: boolean): Promise<void> => {
    normal.latencies = [];
    normal.ops = 0;
    normal.maxRetries = 0;
    normal.txs = 0;
    const logBefore = logBytes;
    const droppedBefore = Number(/^events dropped (\d+)/m.exec(await dom0.ok(Op.CONTROL, 'stats|'))![1]);
    await dom0.ok(Op.CONTROL, 'loop|reset|');
    if (hostile) watcher.socket.pause();
    const attackers = hostile ? attack(sock, dom0w, watcher, listers, writers) : undefined;
    normal.start(name);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    await normal.stop();
    const elapsed = (performance.now() - t0) / 1000;
    const opened = (await attackers?.stop()) ?? 0;
    const loop = (await dom0.ok(Op.CONTROL, 'loop|')).replace(/\0$/, '');
    const dropped = Number(/^events dropped (\d+)/m.exec(await dom0.ok(Op.CONTROL, 'stats|'))![1]) - droppedBefore;
    const lat = normal.latencies;
    console.log(
      [
        `## ${hostile ? 'under attack (normal load + 4 attackers)' : 'baseline (normal load alone)'}: ${elapsed.toFixed(0)} s${hostile ? `, ${opened} slow-loris connections opened` : ''}`,
        `normal ops ${(normal.ops / elapsed).toFixed(0)}/s (dom0 reads + guest writes, each every 10 ms), dom0 transactions ${(normal.txs / elapsed).toFixed(0)}/s, most retries of one ${normal.maxRetries}`,
        `normal latency p50 ${quantile(lat, 0.5).toFixed(2)} ms, p99 ${quantile(lat, 0.99).toFixed(2)} ms, max ${Math.max(...lat).toFixed(2)} ms (${lat.length} requests)`,
        `daemon loop (CONTROL loop): ${loop}`,
        `daemon peak RSS ${(rssPeak(daemon.pid!) / 2 ** 20).toFixed(1)} MiB, log ${logBytes - logBefore} bytes, watch events dropped ${dropped}`,
      ].join('\n'),
    );
  };

  await phase('baseline', BASELINE, false);
  await phase('attack', SECONDS, true);

  // What the normal clients lost: every write of theirs reads back, every event of theirs came.
  await sleep(200);
  let lostWrites = 0;
  for (const [path, v] of normal.written) if ((await dom0.ok(Op.READ, `${path}|`)) !== v) lostWrites++;
  console.log(`lost: ${lostWrites} of the guest's ${normal.written.size} nodes not as last written; watch events ${normal.eventsSeen} of ${normal.eventsExpected} received`);
  const alive = daemon.exitCode === null;
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  rmSync(rundir, { recursive: true, force: true });
  if (!alive || lostWrites > 0 || normal.eventsSeen < normal.eventsExpected) process.exitCode = 1;
  process.exit();
}

await main();
