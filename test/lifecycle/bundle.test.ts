/**
 * The executable as built (issue 16: cold start near `node -e 0`). `npm run build` bundles the
 * daemon (package.json `bundle`): `dist/src/nxenstored.js` holds the runtime check and turns the
 * V8 compile cache on (src/runtime.ts) before it loads the daemon's chunks, and its
 * `import.meta.dirname` must be `dist/src` for the cache to land in `dist/.compile-cache`. The
 * cache must be on disk once the daemon is ready, even if it never exits normally afterwards.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as module from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Map as ImmMap } from 'immutable';
import { afterEach, describe, expect, it } from 'vitest';
import { XsClient } from '../../clients/index.js';
import { writeSnapshotFileSync } from '../../server/persistence/index.js';
import { DOM0_ONLY, XsNode, encodeSnapshot, fromRoot } from '../../store/index.js';
import { DAEMON_NODE_FLAGS } from '../../src/node-flags.js';
import { DAEMON_JS, REPO } from '../helpers/daemon.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const CHUNKS = join(dirname(DAEMON_JS), 'chunks');

describe('the bundled executable', () => {
  it('keeps the runtime check and the compile cache in its own file and loads the daemon from chunks with source maps', () => {
    const entry = readFileSync(DAEMON_JS, 'utf8');
    expect(entry.startsWith(`#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}\n`)).toBe(true);
    expect(entry).toContain('enableCompileCache');
    expect(entry).toContain('import.meta.dirname');
    expect(entry).toMatch(/await import\("\.\/chunks\/daemon-main-[A-Z0-9]+\.js"\)/);
    const chunks = readdirSync(CHUNKS).filter((f) => f.endsWith('.js'));
    expect(chunks.some((f) => f.startsWith('daemon-main-'))).toBe(true);
    const sources = new Set<string>();
    for (const f of chunks) {
      const map = JSON.parse(readFileSync(join(CHUNKS, `${f}.map`), 'utf8')) as { sources: string[] };
      // Paths relative to the chunk: the repository's .ts files and the bundled packages' files.
      // (`nxs-builtin:node:fs`, `nxs-immutable:immutable`: modules src/bundle/bundle.mjs makes.)
      for (const s of map.sources) if (!/nxs-(builtin|immutable):/.test(s)) sources.add(resolve(CHUNKS, s));
    }
    for (const s of sources) expect(existsSync(s), s).toBe(true);
    expect(sources).toContain(resolve(DAEMON_JS, '..', '..', '..', 'src', 'daemon-main.ts'));
    expect(sources).toContain(resolve(DAEMON_JS, '..', '..', '..', 'store', 'snapshot.ts'));
  });

  it('writes the compile cache once ready, even when killed (-9) right after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nxs-bundle-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const cache = join(dir, 'cache');
    const { NODE_DISABLE_COMPILE_CACHE: _, ...env } = process.env;
    const { child } = await startReady(join(dir, 'run'), { ...env, NODE_COMPILE_CACHE: cache });
    const hasCache = typeof (module as { flushCompileCache?: unknown }).flushCompileCache === 'function';
    // Node 22.10+: written soon after ready (polled: the write follows the first turn of the loop).
    for (let i = 0; i < 100 && hasCache && cacheEntries(cache) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    if (hasCache) expect(cacheEntries(cache)).toBeGreaterThan(0);
    // Node 20 has no compile cache: nothing is written, and the daemon starts all the same.
    else expect(existsSync(cache)).toBe(false);
  });

  it('writes the compile cache at ready only when no earlier start had written it', async () => {
    const hasCache = typeof (module as { flushCompileCache?: unknown }).flushCompileCache === 'function';
    const dir = mkdtempSync(join(tmpdir(), 'nxs-bundle-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const cache = join(dir, 'cache');
    // Node's own trace of the compile cache (stderr) says when the daemon asked for a flush.
    const { NODE_DISABLE_COMPILE_CACHE: _, ...env } = process.env;
    const start = async (n: number): Promise<string> => {
      const { child, output } = await startReady(join(dir, `run${n}`), { ...env, NODE_COMPILE_CACHE: cache, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' });
      // The flush is a setImmediate after ready: give it the time it took in the test above.
      for (let i = 0; i < 100 && hasCache && n === 1 && cacheEntries(cache) === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      return output();
    };
    const first = await start(1);
    const second = await start(2);
    if (!hasCache) return void expect(existsSync(cache)).toBe(false);
    expect(first).toContain('flushCompileCache() requested');
    expect(cacheEntries(cache)).toBeGreaterThan(0);
    // The second start found the cache (and used it): no flush, the cache left as it was.
    expect(second).toMatch(/was accepted/);
    expect(second).not.toContain('flushCompileCache() requested');
  });
});

describe('what a cold start loads (issue 16: only what serving needs before the first reply)', () => {
  // Built-ins the daemon used to load at start for one function each, or for code it never runs:
  // zlib (crc32), crypto (a listing's generation), perf_hooks (the loop monitor, performance.now),
  // worker_threads (pino's transports, via thread-stream), assert (sonic-boom), the diff code
  // node:util's ES facade pulled in.
  // Since: node:fs/promises (and the readline, fs.Dir and watcher modules it loads), which node:fs's
  // ES facade loaded for its `promises` getter and the log's segment file for its FileHandle; and
  // pino, evaluated only when the log is first written (os is its own, loaded by nothing else).
  // Node 20's own loader takes fs/promises and readline whatever the daemon does.
  // And cluster with child_process and dgram, which net.Server.listen requires on every call
  // (server/transport/node-internals.ts, listenAlone).
  const LATER = ['zlib', 'crypto', 'perf_hooks', 'worker_threads', 'assert', 'internal/util/diff', 'os', 'cluster', 'child_process', 'dgram'];
  if (Number(process.versions.node.split('.')[0]) >= 22) LATER.push('fs/promises', 'internal/fs/promises', 'internal/readline/interface');

  it('serves its first reply from a data directory without loading them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nxs-bundle-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const data = join(dir, 'data');
    const kids: [string, XsNode][] = [];
    for (let i = 0; i < 1000; i++) kids.push([`k${i}`, XsNode.leaf(`value ${i}`, DOM0_ONLY)]);
    writeSnapshotFileSync(data, encodeSnapshot(fromRoot(new XsNode('', DOM0_ONLY, ImmMap([['big', new XsNode('', DOM0_ONLY, ImmMap(kids))]])), 7)));
    // The list of modules Node has loaded, written when the test asks (SIGUSR2).
    const dump = join(dir, 'dump.cjs');
    const list = join(dir, 'modules.txt');
    writeFileSync(dump, `process.on('SIGUSR2', () => require('fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));\n`);
    // What Node loads for nothing (`node -e 0` with the same preload) cannot be the daemon's doing.
    const bare = spawnSync(process.execPath, ['--require', dump, '-e', `require('fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n'))`]);
    expect(bare.status).toBe(0);
    const loadedBare = new Set(readFileSync(list, 'utf8').split('\n'));
    rmSync(list);
    const { NODE_OPTIONS: _, ...env } = process.env;
    const child = spawn(process.execPath, ['--require', dump, DAEMON_JS, '--rundir', join(dir, 'run'), '--data-dir', data], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.push(() => child.kill('SIGKILL'));
    let out = '';
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const socket = join(dir, 'run', 'socket');
    for (let i = 0; i < 400 && !existsSync(join(dir, 'run', 'socket_ro')); i++) await new Promise((r) => setTimeout(r, 5));
    const client = await XsClient.connect(socket);
    cleanup.push(() => client.close());
    expect(await client.read('/big/k999')).toBe('value 999');
    // Before the log is written (a moment after ready): what was loaded for the first reply.
    expect(out).not.toMatch(/ INFO +ready /);
    child.kill('SIGUSR2');
    for (let i = 0; i < 100 && !existsSync(list); i++) await new Promise((r) => setTimeout(r, 20));
    const loaded = readFileSync(list, 'utf8').split('\n');
    expect(loaded).toContain('NativeModule net');
    for (const m of LATER) if (!loadedBare.has(`NativeModule ${m}`)) expect(loaded, out).not.toContain(`NativeModule ${m}`);
  });

  it('is ASCII, which Node decodes without making two-byte strings of it', () => {
    for (const f of [DAEMON_JS, ...readdirSync(CHUNKS).filter((n) => n.endsWith('.js')).map((n) => join(CHUNKS, n))]) {
      const bytes = readFileSync(f);
      expect(bytes.findIndex((b) => b > 0x7f), f).toBe(-1);
    }
  });

  it("leaves pino's transports out of the bundle, and says so if one is ever asked for", () => {
    const sources = new Set<string>();
    for (const f of readdirSync(CHUNKS).filter((n) => n.endsWith('.js.map'))) {
      for (const s of (JSON.parse(readFileSync(join(CHUNKS, f), 'utf8')) as { sources: string[] }).sources) sources.add(resolve(CHUNKS, s));
    }
    expect([...sources].filter((s) => s.includes('/thread-stream/'))).toEqual([]);
    expect(sources).toContain(join(REPO, 'src', 'bundle', 'shims', 'thread-stream.cjs'));
    const shim = module.createRequire(import.meta.url);
    const ThreadStream = shim(join(REPO, 'src', 'bundle', 'shims', 'thread-stream.cjs')) as new () => unknown;
    expect(() => new ThreadStream()).toThrow(/pino transports are not part of the daemon/);
    expect((shim(join(REPO, 'src', 'bundle', 'shims', 'worker-threads.cjs')) as { isMainThread: boolean }).isMainThread).toBe(true);
    // sonic-boom's one use: assert(condition, message), an AssertionError as Node's would throw.
    const assert = shim(join(REPO, 'src', 'bundle', 'shims', 'assert.cjs')) as (v: unknown, m?: string) => void;
    expect(() => assert(true, 'no')).not.toThrow();
    expect(() => assert(false, 'sonic.fd must be a number')).toThrow(expect.objectContaining({ name: 'AssertionError', code: 'ERR_ASSERTION', message: 'sonic.fd must be a number' }));
  });
});

/** The daemon started on `rundir` with `env`, once it logged ready; `output()`: its stdout and stderr so far. */
async function startReady(rundir: string, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [DAEMON_JS, '--rundir', rundir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.push(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  for (let i = 0; i < 400 && !/ INFO +ready /.test(out); i++) await new Promise((r) => setTimeout(r, 50));
  expect(out).toMatch(/ INFO +ready /);
  return { child, output: () => out };
}

/** Files under the cache directory (Node keeps them in a folder per Node version). */
function cacheEntries(cache: string): number {
  if (!existsSync(cache)) return 0;
  return readdirSync(cache, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
}
