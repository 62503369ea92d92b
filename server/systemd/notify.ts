import { createRequire } from 'node:module';

/**
 * Readiness notification, sd_notify(3)'s protocol: newline-separated `KEY=VALUE` assignments in
 * one datagram to the AF_UNIX socket named by `NOTIFY_SOCKET` (`READY=1`, `STATUS=...`,
 * `STOPPING=1`, `RELOADING=1` with `MONOTONIC_USEC=`).
 *
 * Node has no Unix datagram sockets (`dgram` is UDP only), so the datagram goes through
 * `unix-dgram`, a small native addon (socket/sendto in ~400 lines of C++, maintained since 2011,
 * prebuilt here). It sends from our own pid, which is what systemd's default `NotifyAccess=main`
 * accepts. Shelling out to `systemd-notify` instead would send from a child pid, which
 * `NotifyAccess=main` rejects and `NotifyAccess=all` accepts only racily (the child may be gone
 * before systemd looks up its cgroup).
 *
 * unix-dgram cannot address abstract-namespace sockets (`@name`): it copies the path with
 * strncpy, which stops at the leading NUL, and passes sizeof(sockaddr_un) as the address length
 * where the abstract name must be exactly as long as given. For those, and only those, we fall
 * back to `systemd-notify --pid=<our pid>`, with the race above, and warn once. systemd itself
 * uses a path (`/run/systemd/notify`), so a service started by systemd never needs the fallback.
 */
export interface Notifier {
  /** Whether `NOTIFY_SOCKET` was set. */
  readonly enabled: boolean;
  ready(status: string): void;
  status(status: string): void;
  reloading(): void;
  stopping(status: string): void;
  /** Resolves once every notification so far has been handed to the manager (before exiting). */
  settled(): Promise<void>;
  /** `MAINPID=pid`: another process of the service takes over as its main one (live update). */
  mainPid(pid: number): void;
}

interface DgramSocket {
  on(event: 'error', fn: (e: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (e?: Error) => void): void;
  close(): void;
}

interface UnixDgram {
  createSocket(type: 'unix_dgram'): DgramSocket;
}

/**
 * `createNotifier(env, warn)` reads and removes `NOTIFY_SOCKET` (children must not notify in our
 * name). Failures to send are warnings, never fatal: readiness is a courtesy to the manager.
 */
export function createNotifier(warn: (msg: string) => void, env: NodeJS.ProcessEnv = process.env): Notifier {
  const address = env['NOTIFY_SOCKET'];
  delete env['NOTIFY_SOCKET'];
  if (address === undefined || address === '') {
    const nothing = () => {};
    const settled = () => Promise.resolve();
    return { enabled: false, ready: nothing, status: nothing, reloading: nothing, stopping: nothing, mainPid: nothing, settled };
  }
  const { send, settled } = address.startsWith('@') ? abstractSender(address, warn) : pathSender(address, warn);
  return {
    enabled: true,
    settled,
    ready: (status) => send([`READY=1`, `STATUS=${oneLine(status)}`, `MAINPID=${process.pid}`]),
    status: (status) => send([`STATUS=${oneLine(status)}`]),
    // systemd (Type=notify-reload, v253+) wants the CLOCK_MONOTONIC time of the reload request;
    // process.hrtime is that clock on Linux (libuv's uv_hrtime).
    reloading: () => send([`RELOADING=1`, `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`]),
    stopping: (status) => send([`STOPPING=1`, `STATUS=${oneLine(status)}`]),
    mainPid: (pid) => send([`MAINPID=${pid}`]),
  };
}

function oneLine(s: string): string {
  return s.replace(/\n/g, ' ');
}

interface Sender {
  send(lines: string[]): void;
  settled(): Promise<void>;
}

/** unix-dgram sends synchronously: nothing is ever outstanding. */
function pathSender(path: string, warn: (msg: string) => void): Sender {
  let socket: DgramSocket | undefined;
  const send = (lines: string[]) => {
    try {
      if (socket === undefined) {
        const require = createRequire(import.meta.url);
        socket = (require('unix-dgram') as UnixDgram).createSocket('unix_dgram');
        socket.on('error', (e) => warn(`NOTIFY_SOCKET ${path}: ${e.message}`));
      }
      const msg = Buffer.from(lines.join('\n'));
      socket.send(msg, 0, msg.length, path, (e) => {
        if (e !== undefined) warn(`NOTIFY_SOCKET ${path}: ${e.message}`);
      });
    } catch (e) {
      warn(`NOTIFY_SOCKET ${path}: ${(e as Error).message}`);
    }
  };
  return { send, settled: () => Promise.resolve() };
}

function abstractSender(address: string, warn: (msg: string) => void): Sender {
  warn(
    `NOTIFY_SOCKET ${address} is an abstract socket, which unix-dgram cannot address; ` +
      `notifying through systemd-notify (the manager must accept NotifyAccess=all)`,
  );
  // Sent in order: a later READY=1 must not overtake an earlier RELOADING=1.
  let chain = Promise.resolve();
  // systemd-notify sends in the name of our pid, which must still exist: exiting waits for it.
  const settled = () => chain;
  const send = (lines: string[]) => {
    chain = chain.then(
      () =>
        new Promise<void>((resolve) => {
          process.getBuiltinModule('node:child_process').execFile(
            'systemd-notify',
            [`--pid=${process.pid}`, ...lines],
            { env: { ...process.env, NOTIFY_SOCKET: address } },
            (e) => {
              if (e) warn(`systemd-notify: ${e.message}`);
              resolve();
            },
          );
        }),
    );
  };
  return { send, settled };
}
