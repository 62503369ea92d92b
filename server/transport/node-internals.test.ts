import { spawn, spawnSync } from 'node:child_process';
import { linkSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { descriptor, listenAlone } from './node-internals.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nxs-listen-'));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function server(): Server {
  const s = createServer((c) => c.end('hello'));
  cleanup.push(() => s.close());
  return s;
}

/** The built module (a child process runs no TypeScript). */
const IMPORT = `import { createServer } from 'node:net'; import { listenAlone } from ${JSON.stringify(join(import.meta.dirname, '..', '..', 'dist', 'server', 'transport', 'node-internals.js'))};`;

const greeting = (path: string) =>
  new Promise<string>((resolve, reject) => {
    let got = '';
    connect(path)
      .on('data', (b) => (got += b.toString()))
      .on('end', () => resolve(got))
      .on('error', reject);
  });

describe('listenAlone (server.listen without node:cluster)', () => {
  it('listens on a Unix socket path, as listen does: listening, address, connections, close', async () => {
    const path = join(dir(), 'sock');
    const s = server();
    const listen = vi.spyOn(s, 'listen');
    await new Promise<void>((r) => listenAlone(s, { path }, r));
    expect(listen).not.toHaveBeenCalled();
    expect(s.listening).toBe(true);
    expect(s.address()).toBe(path);
    expect(await greeting(path)).toBe('hello');
    await new Promise((r) => s.close(r));
    expect(s.listening).toBe(false);
  });

  it('listens on an inherited descriptor (a socket-activated start)', async () => {
    const path = join(dir(), 'sock');
    const first = server();
    await new Promise<void>((r) => first.listen(path, r));
    // The descriptor goes to a process of its own, as systemd passes it: two handles on one
    // descriptor in one process would share its epoll registration.
    const child = spawn(process.execPath, ['--input-type=module', '-e', `${IMPORT}
      const s = createServer((c) => c.end('from the child'));
      listenAlone(s, { fd: 3 }, () => process.stdout.write('listening'));`], { stdio: ['ignore', 'pipe', 'inherit', descriptor(first)!] });
    cleanup.push(() => child.kill());
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));
    // Closing ours removes its path: a second name for the socket stays.
    linkSync(path, `${path}.2`);
    await new Promise((r) => first.close(r));
    expect(await greeting(`${path}.2`)).toBe('from the child');
  });

  it("reports a path it cannot listen on as the server's 'error', as listen does", async () => {
    const path = join(dir(), 'file');
    writeFileSync(path, 'not a socket');
    const s = server();
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      s.once('error', resolve);
      listenAlone(s, { path }, () => resolve(new Error('listened') as NodeJS.ErrnoException));
    });
    expect(err.code).toBe('EADDRINUSE');
  });

  it('takes the public listen where a step it relies on is missing', async () => {
    const path = join(dir(), 'sock');
    const s = server();
    // (`_listen2` itself cannot go: Node's own listen calls it.)
    Object.defineProperty(s, '_listeningId', { value: 'not a number', writable: true });
    const listen = vi.spyOn(s, 'listen');
    await new Promise<void>((r) => listenAlone(s, { path }, r));
    expect(listen).toHaveBeenCalledTimes(1);
    expect(await greeting(path)).toBe('hello');
  });

  it('does not load node:cluster, which listen does', () => {
    const probe = (how: string) =>
      spawnSync(process.execPath, [
        '--input-type=module',
        '-e',
        `${IMPORT}
         const s = createServer(); const done = () => { process.stdout.write(String(process.moduleLoadList.includes('NativeModule cluster'))); s.close(); };
         ${how === 'alone' ? `listenAlone(s, { path: ${JSON.stringify(join(dir(), 'a'))} }, done)` : `s.listen(${JSON.stringify(join(dir(), 'b'))}, done)`};`,
      ]).stdout.toString();
    expect(probe('listen')).toBe('true');
    expect(probe('alone')).toBe('false');
  });
});
