import { XsError } from '../protocol/index.js';
import { Failure, UsageError, could, type Command, type CommandContext } from './nxs-command.js';
import { sanitise } from './sanitise.js';

/**
 * `nxs history|log PATH`, `nxs diff A B [PATH]`, `nxs at G|TIME read|ls|perms|tree PATH`,
 * `nxs blame PATH` (issue 14): CONTROL `history ...` (server/dispatch/handlers/history.ts) made
 * readable; `--json` prints the daemon's answer as it is, for scripts. A moment older than the
 * daemon keeps is reported with the oldest it keeps (the wire carries only ENOENT).
 */

interface ChangeJson {
  path: string;
  kind: string;
  old?: string;
  new?: string;
  oldPerms?: string[];
  newPerms?: string[];
  oldCut?: boolean;
  newCut?: boolean;
}

interface EntryJson {
  generation: number;
  time: string;
  domid: number;
  connection: string;
  id?: number;
  tx?: number;
  requests: string[];
  moreRequests?: boolean;
  changes: ChangeJson[];
  truncated?: boolean;
}

const JSON_OPTION = { json: { type: 'boolean' } } as const;

/** CONTROL history `args`; ENOENT becomes a Failure naming the oldest moment kept. */
async function ask(ctx: CommandContext, what: string, args: readonly string[]): Promise<string> {
  try {
    return await ctx.client.control('history', ...args);
  } catch (e) {
    if (e instanceof XsError && e.code === 'ENOENT') {
      const info = JSON.parse(await could('ask for the history window', () => ctx.client.control('history', 'info'))) as {
        oldest: { generation: number; time?: string };
      };
      const o = info.oldest;
      throw new Failure(`could not ${what}: ENOENT (no such node then, or older than the oldest kept: generation ${o.generation}${o.time === undefined ? '' : ` at ${o.time}`})`, { cause: e });
    }
    return could(what, () => Promise.reject(e));
  }
}

/** A value for a human: escaped like xenstore-read, quoted, marked when the daemon cut it. */
function shown(v: string | undefined, cut: boolean | undefined): string {
  if (v === undefined) return '-';
  return `"${sanitise(Buffer.from(v, 'latin1'))}"${cut === true ? '…' : ''}`;
}

function changeLine(c: ChangeJson): string {
  const perms = c.oldPerms !== undefined && c.newPerms !== undefined ? ` perms ${c.oldPerms.join(',')} -> ${c.newPerms.join(',')}` : '';
  switch (c.kind) {
    case 'added':
      return `  + ${c.path} = ${shown(c.new, c.newCut)}`;
    case 'removed':
      return `  - ${c.path} (was ${shown(c.old, c.oldCut)})`;
    case 'perms':
      return `  ~ ${c.path}${perms}`;
    default:
      return `  ~ ${c.path}: ${shown(c.old, c.oldCut)} -> ${shown(c.new, c.newCut)}${perms}`;
  }
}

function who(e: EntryJson): string {
  const conn = e.connection === 'internal' ? 'internal' : `${e.connection}#${e.id ?? '?'}`;
  return `dom${e.domid} ${conn}${e.tx === undefined ? '' : ` tx ${e.tx}`}`;
}

const LOG_OPTIONS = {
  ...JSON_OPTION,
  domid: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  kind: { type: 'string' },
  conn: { type: 'string' },
  limit: { type: 'string', short: 'n' },
  before: { type: 'string' },
} as const;

const log: Command = {
  synopsis: '[--domid N] [--since TIME] [--until TIME] [--kind K] [--conn KIND] [-n N] [--before G] [--json] [PATH]',
  summary: 'who changed PATH (or below) and how, newest first, from the daemon\'s history (K: added|removed|changed|perms)',
  options: LOG_OPTIONS,
  min: 0,
  max: 1,
  run: async (ctx, [path = '/'], opts) => {
    const args = ['log', path];
    for (const k of ['domid', 'since', 'until', 'kind', 'conn', 'limit', 'before'] as const) {
      if (typeof opts[k] === 'string') args.push(`${k}=${opts[k] as string}`);
    }
    const text = await ask(ctx, `read the history of ${path}`, args);
    if (opts.json === true) return printed(ctx, text);
    const page = JSON.parse(text) as { entries: EntryJson[]; next?: number };
    for (const e of page.entries) {
      ctx.out(`${e.generation}  ${e.time}  ${who(e)}  ${e.requests.join('; ')}${e.moreRequests === true ? '; …' : ''}\n`);
      for (const c of e.changes) ctx.out(`${changeLine(c)}\n`);
      if (e.truncated === true) ctx.out('  (more changes)\n');
    }
    if (page.next !== undefined) ctx.out(`(more: --before ${page.next})\n`);
    return 0;
  },
};

const diff: Command = {
  synopsis: '[--json] A B [PATH]',
  summary: 'what changed under PATH between A and B (generations or RFC 3339 times)',
  options: JSON_OPTION,
  min: 2,
  max: 3,
  run: async (ctx, [a, b, path = '/'], opts) => {
    const text = await ask(ctx, `diff ${a!} ${b!}`, ['diff', a!, b!, path]);
    if (opts.json === true) return printed(ctx, text);
    const d = JSON.parse(text) as { from: number; to: number; changes: ChangeJson[]; truncated?: boolean };
    ctx.out(`generation ${d.from} -> ${d.to}\n`);
    for (const c of d.changes) ctx.out(`${changeLine(c)}\n`);
    if (d.truncated === true) ctx.out('(more changes: narrow PATH)\n');
    return 0;
  },
};

const at: Command = {
  synopsis: '[--json] G|TIME read|ls|perms|tree PATH',
  summary: 'PATH as it was at generation G or RFC 3339 TIME',
  options: JSON_OPTION,
  min: 3,
  max: 3,
  run: async (ctx, [moment, op, path], opts) => {
    if (!['read', 'ls', 'perms', 'tree'].includes(op!)) throw new UsageError('at G|TIME read|ls|perms|tree PATH');
    const text = await ask(ctx, `${op!} ${path!} at ${moment!}`, ['at', moment!, op!, path!]);
    if (op === 'read') {
      ctx.out(opts.json === true ? `${JSON.stringify({ path, value: text })}\n` : `${sanitise(Buffer.from(text, 'latin1'))}\n`);
      return 0;
    }
    if (opts.json === true) return printed(ctx, text);
    const r = JSON.parse(text) as { children?: string[]; perms?: string[]; nodes?: { path: string; value: string; perms: string[] }[]; truncated?: boolean };
    if (r.children !== undefined) for (const n of r.children) ctx.out(`${n}\n`);
    if (r.perms !== undefined) ctx.out(`${r.perms.join('\n')}\n`);
    if (r.nodes !== undefined) for (const n of r.nodes) ctx.out(`${n.path} = ${shown(n.value, false)}  (${n.perms.join(',')})\n`);
    if (r.truncated === true) ctx.out('(more)\n');
    return 0;
  },
};

const blame: Command = {
  synopsis: '[--json] PATH',
  summary: 'for each node under PATH, the last commit that changed it (generation, time, who)',
  options: JSON_OPTION,
  min: 1,
  max: 1,
  run: async (ctx, [path], opts) => {
    const text = await ask(ctx, `blame ${path!}`, ['blame', path!]);
    if (opts.json === true) return printed(ctx, text);
    const b = JSON.parse(text) as { oldest: number; lines: { path: string; generation?: number; time?: string; domid?: number; connection?: string; kind?: string }[]; truncated?: boolean };
    for (const l of b.lines) {
      ctx.out(l.generation === undefined ? `${'≤' + String(b.oldest)}`.padEnd(8) + `${''.padEnd(26)}${''.padEnd(16)}${l.path}\n` : `${String(l.generation).padEnd(8)}${l.time!.padEnd(26)}${`dom${l.domid!} ${l.connection!}`.padEnd(16)}${l.path}\n`);
    }
    if (b.truncated === true) ctx.out('(more nodes)\n');
    return 0;
  },
};

function printed(ctx: CommandContext, text: string): number {
  ctx.out(`${text}\n`);
  return 0;
}

export const HISTORY_COMMANDS: Readonly<Record<string, Command>> = { history: log, log, diff, at, blame };
