import { Failure, UsageError, could, type Command, type CommandContext } from './nxs-command.js';

/**
 * `nxs live-update`: what `xenstore-control live-update [-c CMDLINE] [-F] [-t TIMEOUT] FILE` does
 * (Xen 4.15+, `xenstore_control.c` `live_update_daemon`): CONTROL `live-update -f FILE`, then
 * `-c CMDLINE`, then `-s -t TIMEOUT [-F]`. The daemon answers `OK` (from the new process, once it
 * serves) or the reason it did not update; it never answers BUSY (it waits itself), so there is no
 * retry loop. FILE may be left out: the daemon then restarts the program it runs.
 *
 * `--to XENSTORED` goes the other way, back to cxenstored after a take-over from it: CONTROL
 * `hand-back XENSTORED [ARG...]` (server/xen-migration/hand-back.ts), `-c` giving its options
 * (split at blanks; default `-N -F <our pid file>`). The `OK` comes from cxenstored once it serves.
 */
export const liveUpdate: Command = {
  synopsis: '[-f FILE] [-c CMDLINE] [-t SECONDS] [-F] | --to XENSTORED [-c OPTIONS]',
  summary:
    'hand the daemon to a new process (FILE, default the running program; CMDLINE, default its arguments) without clients noticing; waits up to SECONDS (60) for open transactions, which -F then fails with EAGAIN. --to: back to cxenstored (after a take-over from it), OPTIONS its own',
  options: {
    to: { type: 'string' },
    file: { type: 'string', short: 'f' },
    cmdline: { type: 'string', short: 'c' },
    timeout: { type: 'string', short: 't' },
    force: { type: 'boolean', short: 'F' },
  },
  min: 0,
  max: 0,
  run: async (ctx, _args, opts) => {
    const file = typeof opts.file === 'string' ? opts.file : undefined;
    const cmdline = typeof opts.cmdline === 'string' ? opts.cmdline : undefined;
    const timeout = typeof opts.timeout === 'string' ? opts.timeout : '60';
    if (typeof opts.to === 'string') {
      if (file !== undefined || opts.timeout !== undefined || opts.force === true) throw new UsageError('--to takes only -c OPTIONS');
      const reply = await could('hand back', () => ctx.client.control('hand-back', opts.to as string, ...(cmdline ?? '').split(/[ \t]+/).filter((a) => a !== '')));
      if (reply !== 'OK') throw new Failure(`hand-back failed: ${reply}`);
      ctx.out('OK\n');
      return 0;
    }
    if (!/^[0-9]{1,9}$/.test(timeout)) throw new UsageError(`bad timeout ${JSON.stringify(timeout)}`);
    // Xen's session: -c belongs to a session that -f opened.
    if (cmdline !== undefined && file === undefined) throw new UsageError('-c needs -f FILE');
    let session = false;
    try {
      if (file !== undefined) {
        await step(ctx, '-f', file);
        session = true;
      }
      if (cmdline !== undefined) await step(ctx, '-c', cmdline);
      session = false; // -s ends the session whatever happens
      await step(ctx, '-s', '-t', timeout, ...(opts.force === true ? ['-F'] : []));
    } catch (e) {
      if (session) await ctx.client.control('live-update', '-a').catch(() => undefined);
      throw e;
    }
    ctx.out('OK\n');
    return 0;
  },
};

/** One CONTROL `live-update ARGS…`; anything but `OK` is the daemon's reason, and a failure. */
async function step(ctx: CommandContext, ...args: string[]): Promise<void> {
  const reply = await could(`live-update ${args[0]!}`, () => ctx.client.control('live-update', ...args));
  if (reply !== 'OK') throw new Failure(`live update failed: ${reply}`);
}
