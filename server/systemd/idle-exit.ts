import type { Daemon } from '../daemon.js';

/**
 * `--idle-exit SECONDS`: under socket activation an idle daemon may exit, and systemd starts it
 * again on the next connection (the listening sockets stay open in systemd meanwhile). Idle means:
 *  - no request on any connection and no new connection for SECONDS (`Daemon.touch()`), and
 *  - nothing that exiting would silently destroy: no client holds a watch or an open
 *    transaction, and no domain is introduced (each of those is volatile state, see the README).
 * Health probes do not count as activity (the gateway's `/healthz` does not call `touch()`), so
 * monitoring that polls more often than SECONDS does not keep the daemon alive. Only used with
 * `--data-dir`, so the store itself survives the exit.
 */
export function idleExitTimer(daemon: Daemon, seconds: number, exit: () => void): NodeJS.Timeout {
  const ms = seconds * 1000;
  let lastActivity = Date.now();
  const timer = setInterval(
    () => {
      if (daemon.active) {
        daemon.active = false;
        lastActivity = Date.now();
      }
      if (Date.now() - lastActivity < ms || holdsState(daemon)) return;
      clearInterval(timer);
      exit();
    },
    Math.min(1000, ms / 4),
  );
  timer.unref();
  return timer;
}

function holdsState(daemon: Daemon): boolean {
  if (daemon.domains.all().next().done !== true) return true;
  for (const conn of daemon.connections) {
    if (conn.transactions.size > 0 || daemon.watches.count(conn) > 0) return true;
  }
  return false;
}
