/**
 * What an attack on the gateway must not touch: domain 6's secret (`n6`, written by domain 6
 * itself over its own socket) and dom0's ability to use the store. `plantVictim(d)` sets them up
 * before the attack; `intact()` afterwards asserts that the daemon still runs, a fresh dom0
 * connection on the Unix socket can write and read back, and domain 6's node is as it left it.
 * `startTarget(args)` is the daemon under attack: the gateway on loopback, the victim planted.
 */
import { readFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import type { Wire } from '../helpers/wire.js';

export const SECRET_PATH = '/local/domain/6/secret';
export const SECRET = 'domain 6 only';

export interface Victim {
  /** Domain 6's own connection (its domain socket). */
  readonly dom6: Wire;
  intact(): Promise<void>;
}

export async function plantVictim(d: RunningDaemon): Promise<Victim> {
  const dom0 = await d.connect();
  const dom6 = await d.guest(6);
  await dom0.mkdir('/local/domain/6');
  await dom0.setPerms('/local/domain/6', ['n6']);
  await dom6.write(SECRET_PATH, SECRET);
  expect(await dom0.getPerms(SECRET_PATH)).toEqual(['n6']);
  dom0.close();
  return {
    dom6,
    intact: async () => {
      expect(d.exited(), d.output()).toBeUndefined();
      const fresh = await d.connect();
      await fresh.write('/attack/after', 'dom0 still writes');
      expect(await fresh.read('/attack/after')).toBe('dom0 still writes');
      expect(await fresh.getPerms(SECRET_PATH)).toEqual(['n6']);
      fresh.close();
      expect(await dom6.read(SECRET_PATH)).toBe(SECRET);
    },
  };
}

export interface Target {
  readonly d: RunningDaemon;
  /** The gateway's `http://127.0.0.1:PORT` and its privileged token. */
  readonly base: string;
  readonly root: string;
  readonly victim: Victim;
}

/** `startTarget(args)` starts the daemon with `--http 127.0.0.1:0` and `args`, and plants the victim. */
export async function startTarget(args: readonly string[] = []): Promise<Target> {
  const d = await startDaemon({ args: ['--http', '127.0.0.1:0', ...args] });
  try {
    const { url, token } = await d.gateway();
    return { d, base: url, root: token, victim: await plantVictim(d) };
  } catch (e) {
    await d.stop();
    throw e;
  }
}

/** `rssBytes(pid)` is the resident set of a process, from `/proc/<pid>/status` (VmRSS, in kB). */
export async function rssBytes(pid: number): Promise<number> {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'latin1'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}
