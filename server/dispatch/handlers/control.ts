import { replyPayload, splitArgs } from '../../../protocol/index.js';
import { checkStore, owned, subtreeSize, XsError } from '../../../store/index.js';
import type { ControlPort } from '../ports.js';
import { required, type Handler, type RequestContext } from '../handler.js';
import { HISTORY_USAGE, historyCommandInTurns } from './history.js';

/**
 * CONTROL (formerly DEBUG), privileged: the commands `xenstore-control` sends (spec §7.16). The
 * reply is text for a human, NUL-terminated. Unknown commands are EINVAL (cxenstored; oxenstored
 * answers OK to anything, which hides typos).
 *
 * On `socket_ro` only the commands that change nothing run (help, stats, history, quota shown,
 * ...): a monitoring tool on the read-only socket may look, but whatever changes the daemon's
 * state (`writes`) is EACCES there, as the requests that change it are (README, Read-only socket).
 */
type Command = {
  readonly usage: string;
  /** Whether these arguments change the daemon's state (refused on `socket_ro`); default false. */
  readonly writes?: boolean | ((args: readonly string[]) => boolean);
  readonly run: (ctx: RequestContext<ControlPort>, args: string[]) => string | Promise<string>;
};

const COMMANDS: Readonly<Record<string, Command>> = {
  help: {
    usage: 'help                        list the commands',
    run: () => Object.values(COMMANDS).map((c) => c.usage).join('\n'),
  },
  print: {
    usage: 'print <text>                write <text> to the daemon log',
    writes: true,
    run: (ctx, args) => {
      ctx.port.log.info({ conn: ctx.conn.id }, args.join(' '));
      return 'OK';
    },
  },
  log: {
    usage: 'log [on|off]                the access log (every request and reply)',
    writes: (args) => args.length > 0,
    run: (ctx, args) => {
      if (args.length > 0) {
        if (args[0] !== 'on' && args[0] !== 'off') throw new XsError('EINVAL', 'log on|off');
        ctx.port.options.accessLog = args[0] === 'on';
      }
      return `access log ${ctx.port.options.accessLog ? 'on' : 'off'}`;
    },
  },
  quota: {
    usage: 'quota [set <name> <value> | <domid>]  show or set quotas, or a domain\'s usage',
    writes: (args) => args[0] === 'set',
    run: (ctx, args) => {
      const q = ctx.port.quotas;
      if (args.length === 0) return q.names().map((n) => `${n.padEnd(18)} ${q.get(n)}`).join('\n');
      if (args[0] === 'set') {
        if (args.length !== 3 || !/^\d+$/.test(args[2]!)) throw new XsError('EINVAL', 'quota set <name> <value>');
        // Every domain's, as in Xen 4.17 (SET_QUOTA's global value is only for later domains).
        q.setEverywhere(args[1]!, Number(args[2]));
        return 'OK';
      }
      if (!/^\d{1,5}$/.test(args[0]!)) throw new XsError('EINVAL', 'quota <domid>');
      return usage(ctx, Number(args[0]));
    },
  },
  check: {
    usage: 'check                       verify the store\'s invariants',
    run: (ctx) => {
      const problems = checkStore(ctx.port.store);
      if (problems.length > 0) ctx.port.log.error({ problems }, 'store check failed');
      return problems.length === 0 ? 'OK' : problems.join('\n');
    },
  },
  memreport: {
    usage: 'memreport                   memory use of the daemon',
    run: (ctx) => {
      // Under `node --expose-gc` (bench:peers) collect first, so heapUsed is the live heap.
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc !== undefined) gc();
      const m = process.memoryUsage();
      const nodes = subtreeSize(ctx.port.store.root);
      return [
        `nodes ${nodes}`,
        `heapUsed ${m.heapUsed}`,
        `rss ${m.rss}`,
        `heapUsed/node ${Math.round(m.heapUsed / nodes)}`,
      ].join('\n');
    },
  },
  'live-update': {
    usage: 'live-update -f FILE | -c CMDLINE | -s [-t SECONDS] [-F] | -a   hand over to a new process',
    writes: true,
    run: (ctx, args) => {
      // Absent only in daemons assembled without listeners (tests of the dispatcher).
      if (ctx.port.liveUpdate === undefined) throw new XsError('ENOSYS', 'live update is not available');
      return ctx.port.liveUpdate.command(ctx.conn, ctx.header, args);
    },
  },
  history: {
    usage: HISTORY_USAGE,
    run: (ctx, args) => historyCommandInTurns(ctx.port, args),
  },
  loop: {
    usage: 'loop [reset]                longest event-loop delay (and p99) since the last reset',
    writes: (args) => args.length > 0,
    run: (ctx, args) => {
      if (args.length > 1 || (args.length === 1 && args[0] !== 'reset')) throw new XsError('EINVAL', 'loop [reset]');
      return ctx.port.loop.report(args[0] === 'reset');
    },
  },
  'hand-back': {
    usage: 'hand-back [-e NAME=VALUE]... FILE [ARG...]   hand over to cxenstored (FILE -U), see README',
    writes: true,
    run: (ctx, args) => {
      if (ctx.port.handBack === undefined) throw new XsError('ENOSYS', 'hand-back is not available');
      return ctx.port.handBack.command(ctx.conn, ctx.header, args);
    },
  },
  stats: {
    usage: 'stats                       requests, commits by path, conflicts, connections',
    run: (ctx) => {
      const d = ctx.port;
      const c = d.stats.commits;
      return [
        `generation ${d.store.generation}`,
        `requests ${d.stats.requests}`,
        `commits read-only ${c['read-only']} fast ${c.fast} merge ${c.merge} replay ${c.replay}`,
        `conflicts ${d.stats.conflicts}`,
        `turns ${d.fairness.stats.turns} held ${d.fairness.stats.held} idle ${d.fairness.stats.idle} exhausted ${d.fairness.stats.exhausted}`,
        `connections ${d.connections.size}`,
        `guest sockets ${d.budgets.sockets} of ${d.descriptors.guestCap(d.domains.size)}, refused ${d.descriptors.refused}`,
        `watches ${d.watches.count()}`,
        `events dropped ${d.drops.total}`,
        `events deferred ${d.backlog.deferred}`,
        `idle closes ${d.idleCloses.total}`,
        `domains ${[...d.domains.all()].map((x) => x.domid).join(' ') || '-'}`,
      ].join('\n');
    },
  },
};

/**
 * A domain's usage against its quotas, `used/max` (cxenstored's `quota <domid>`), from its
 * budget (quotas/domain-budget.ts): a domain without connections holds nothing but its nodes.
 */
function usage(ctx: RequestContext<ControlPort>, domid: number): string {
  const d = ctx.port;
  const limits = d.quotas.limitsFor(domid);
  const b = d.budgets.get(domid);
  return [
    `domain ${domid}${domid !== 0 && !d.domains.has(domid) ? ' (not introduced)' : ''}`,
    `nodes        ${owned(d.store.quota, domid)}/${limits.nodes}`,
    `watches      ${b?.watchCount() ?? 0}/${limits.watches}`,
    `transactions ${b?.transactionCount() ?? 0}/${limits.transactions}`,
    `connections  ${b?.held ?? 0}/${limits.connections}`,
    `memory       ${b?.memory() ?? 0}/${limits.memory}`,
  ].join('\n');
}

export const control: Handler<ControlPort> = (ctx, payload) => {
  const args = required(splitArgs(payload, 64));
  const name = args[0];
  if (name === undefined) throw new XsError('EINVAL', 'CONTROL needs a command');
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (cmd === undefined) throw new XsError('EINVAL', `unknown command ${JSON.stringify(name)}`);
  const rest = args.slice(1);
  if (ctx.conn.caller.readOnly && (typeof cmd.writes === 'function' ? cmd.writes(rest) : cmd.writes === true)) {
    throw new XsError('EACCES', `read-only connection: CONTROL ${name} changes the daemon`);
  }
  const out = cmd.run(ctx, rest);
  return typeof out === 'string' ? { payload: replyPayload.string(out) } : out.then((s) => ({ payload: replyPayload.string(s) }));
};
