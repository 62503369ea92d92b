import { readFile } from 'node:fs/promises';
import { DumpFormatError, dumpTree, parseDump, restoreTree } from './dump.js';
import { issueGuestToken } from './gateway-token.js';
import {
  Failure,
  UsageError,
  could,
  describe,
  inTransaction,
  type Command,
  type CommandContext,
  type OptionValues,
  type TreeOps,
} from './nxs-command.js';
import { HISTORY_COMMANDS } from './nxs-history.js';
import { liveUpdate } from './nxs-live-update.js';
import { childPath } from './path.js';
import { sanitise, unsanitise } from './sanitise.js';
import { ListingError, listTree } from './tree-listing.js';
import type { WatchStream } from './watch-stream.js';

/**
 * The `nxs` subcommands, one entry each (like oxenstored `process.ml` `function_of_type`).
 * Flags and output follow the xenstore-* tools (`xenstore_client.c`) where one exists:
 * `read`/`ls`/`list` escape values the same way, `write` unescapes, `rm -t`, `chmod -r -u`,
 * `watch -n` mean what they mean there, and multi-step commands run in one transaction.
 */

const flag = (opts: OptionValues, name: string): boolean => opts[name] === true;

/** A domain id argument: plain decimal (the daemon checks the range). */
function domid(s: string): number {
  if (!/^[0-9]{1,10}$/.test(s)) throw new UsageError(`bad domain id ${JSON.stringify(s)}`);
  return Number(s);
}

/** A permission argument: n (none), r (read), w (write) or b (both), then a domain id (spec §6.1). */
function perm(s: string): string {
  if (!/^[nrwb][0-9]{1,10}$/.test(s)) throw new UsageError(`invalid permission ${JSON.stringify(s)} (want n|r|w|b followed by a domain id)`);
  return s;
}

function unsigned(s: string, what: string): number {
  if (!/^[0-9]{1,10}$/.test(s)) throw new UsageError(`bad ${what} ${JSON.stringify(s)}`);
  return Number(s);
}

/** Prints the collected output of a transaction once it committed (a retry must not print twice). */
function print(ctx: CommandContext, chunks: readonly (string | Uint8Array)[]): number {
  for (const c of chunks) ctx.out(c);
  return 0;
}

const read: Command = {
  synopsis: '[-p] [-R] PATH...',
  summary: 'print values, escaped like xenstore-read (-R raw bytes, -p "PATH: " prefix)',
  options: { prefix: { type: 'boolean', short: 'p' }, raw: { type: 'boolean', short: 'R' } },
  min: 1,
  run: async (ctx, paths, opts) => {
    const chunks = await inTransaction(ctx.client, paths.length > 1, async (t) => {
      const out: (string | Uint8Array)[] = [];
      for (const p of paths) {
        const value = await could(`read ${p}`, () => t.readBytes(p));
        if (flag(opts, 'prefix')) out.push(`${p}: `);
        out.push(flag(opts, 'raw') ? value : `${sanitise(value)}\n`);
      }
      return out;
    });
    return print(ctx, chunks);
  },
};

const write: Command = {
  synopsis: '[-R] PATH VALUE [PATH VALUE...]',
  summary: 'write values, all pairs in one transaction; escapes like \\n \\x01 are decoded unless -R',
  options: { raw: { type: 'boolean', short: 'R' } },
  min: 2,
  run: async (ctx, args, opts) => {
    if (args.length % 2 !== 0) throw new UsageError('write takes PATH VALUE pairs');
    await inTransaction(ctx.client, args.length > 2, async (t) => {
      for (let i = 0; i < args.length; i += 2) {
        const [p, text] = [args[i]!, args[i + 1]!];
        const value = flag(opts, 'raw') ? Buffer.from(text, 'utf8') : unsanitise(text);
        await could(`write ${p}`, () => t.write(p, value));
      }
    });
    return 0;
  },
};

const mkdir: Command = {
  synopsis: 'PATH...',
  summary: 'create nodes (and missing parents) with empty values; existing ones are kept',
  min: 1,
  run: async (ctx, paths) => {
    await inTransaction(ctx.client, paths.length > 1, async (t) => {
      for (const p of paths) await could(`create ${p}`, () => t.mkdir(p));
    });
    return 0;
  },
};

/**
 * xenstore-rm `-t` ("tidy"): after removing PATH, remove its parent if that now has an empty
 * value and no children, and so on upwards; a parent that cannot be read stops it.
 */
async function tidyUp(t: TreeOps, removed: string): Promise<void> {
  let p = removed;
  for (;;) {
    const slash = p.lastIndexOf('/');
    if (slash <= 0) return; // the next "parent" would be "" or a relative name's nothing
    p = p.slice(0, slash);
    const value = await t.readBytes(p).catch(() => undefined);
    if (value === undefined || value.length > 0) return;
    const children = await t.directory(p).catch(() => undefined);
    if (children === undefined || children.length > 0) return;
    const parent = p;
    await could(`remove ${parent}`, () => t.rm(parent));
  }
}

const rm: Command = {
  synopsis: '[-t] PATH...',
  summary: 'remove nodes and their subtrees; -t also removes parents left empty (value "" and no children)',
  options: { tidy: { type: 'boolean', short: 't' } },
  min: 1,
  run: async (ctx, paths, opts) => {
    await inTransaction(ctx.client, true, async (t) => {
      for (const p of paths) {
        await could(`remove ${p}`, () => t.rm(p));
        if (flag(opts, 'tidy')) await tidyUp(t, p);
      }
    });
    return 0;
  },
};

const exists: Command = {
  synopsis: 'PATH',
  summary: 'exit 0 if the node exists, 1 if not (other errors: message and 1)',
  min: 1,
  max: 1,
  run: async (ctx, [p]) => ((await could(`read ${p!}`, () => ctx.client.exists(p!))) ? 0 : 1),
};

const list: Command = {
  synopsis: '[-p] PATH...',
  summary: 'print child names one per line (-p: as full paths)',
  options: { prefix: { type: 'boolean', short: 'p' } },
  min: 1,
  run: async (ctx, paths, opts) => {
    const chunks = await inTransaction(ctx.client, true, async (t) => {
      const out: string[] = [];
      for (const p of paths) {
        const names = await could(`list ${p}`, () => t.directory(p));
        const prefix = flag(opts, 'prefix') ? `${p === '/' ? '' : p}/` : '';
        for (const n of names) out.push(`${prefix}${n}\n`);
      }
      return out;
    });
    return print(ctx, chunks);
  },
};

const ls: Command = {
  synopsis: '[-p] [-f] [PATH]',
  summary: 'print the tree below PATH (default /) as xenstore-ls does; -p permissions, -f full paths',
  options: { perms: { type: 'boolean', short: 'p' }, full: { type: 'boolean', short: 'f' } },
  min: 0,
  max: 1,
  run: async (ctx, [path = '/'], opts) => {
    const width = ctx.io.columns === undefined ? 80 : ctx.io.columns - 2;
    const options = { perms: flag(opts, 'perms'), fullPaths: flag(opts, 'full'), width };
    try {
      await listTree(ctx.client, path, options, { out: (s) => ctx.out(s), warn: (s) => ctx.warn(s) });
    } catch (e) {
      const reason = e instanceof ListingError ? describe(e.cause) : undefined;
      if (reason === undefined) throw e;
      throw new Failure(`could not list ${(e as ListingError).path}: ${reason}`, { cause: e });
    }
    return 0;
  },
};

/** xenstore-chmod's walk: the node, then (-u) its ancestors up to below `/`, and (-r) its subtree. */
async function chmodWalk(t: TreeOps, path: string, perms: readonly string[], upto: boolean, recurse: boolean): Promise<void> {
  if (path === '') return;
  await could(`set permissions of ${path}`, () => t.setPerms(path, perms));
  if (upto) {
    const slash = path.lastIndexOf('/');
    if (slash >= 0) await chmodWalk(t, path.slice(0, slash), perms, true, false);
  }
  if (recurse) {
    const children = await t.directory(path).catch(() => [] as string[]);
    for (const name of children) await chmodWalk(t, childPath(path, name), perms, false, true);
  }
}

const chmod: Command = {
  synopsis: '[-r] [-u] PATH PERM...',
  summary: 'set permissions (n|r|w|b + domid, owner first); -r also the subtree, -u also the parents',
  options: { recurse: { type: 'boolean', short: 'r' }, upto: { type: 'boolean', short: 'u' } },
  min: 2,
  run: async (ctx, [path, ...rest], opts) => {
    const perms = rest.map(perm);
    await inTransaction(ctx.client, true, (t) => chmodWalk(t, path!, perms, flag(opts, 'upto'), flag(opts, 'recurse')));
    return 0;
  },
};

const getperms: Command = {
  synopsis: 'PATH',
  summary: 'print the permissions, owner first, separated by spaces (the form chmod takes)',
  min: 1,
  max: 1,
  run: async (ctx, [p]) => {
    ctx.out(`${(await could(`get permissions of ${p!}`, () => ctx.client.getPerms(p!))).join(' ')}\n`);
    return 0;
  },
};

/** The AbortSignal that stops `watch`: the caller's, or Ctrl-C / SIGTERM for the process. */
function interruption(ctx: CommandContext): { signal: AbortSignal; dispose(): void } {
  if (ctx.io.signal !== undefined) return { signal: ctx.io.signal, dispose: () => {} };
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

const watch: Command = {
  synopsis: '[-n N] PATH...',
  summary: 'print the path of every event, one per line, until interrupted or N events (the first per PATH is the registration event)',
  options: { number: { type: 'string', short: 'n' } },
  min: 1,
  run: async (ctx, paths, opts) => {
    const limit = typeof opts.number === 'string' ? unsigned(opts.number, 'event count') : Infinity;
    if (limit === 0) return 0;
    // The token is the path, as xenstore-watch does.
    const streams: WatchStream[] = [];
    for (const p of paths) streams.push(await could(`watch ${p}`, () => ctx.client.watch(p, p)));
    const { signal, dispose } = interruption(ctx);
    let seen = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        if (signal.aborted) resolve();
        signal.addEventListener('abort', () => resolve(), { once: true });
        for (const stream of streams) {
          void (async () => {
            for await (const event of stream) {
              if (seen >= limit) return;
              ctx.out(`${event.path}\n`);
              if (++seen >= limit) resolve();
            }
          })().catch((e: unknown) => reject(new Failure(`could not watch ${stream.path}: ${describe(e) ?? String(e)}`, { cause: e })));
        }
      });
    } finally {
      dispose();
    }
    return 0;
  },
};

const control: Command = {
  synopsis: 'CMD [ARGS...]',
  summary: "send a CONTROL command (the daemon's own, e.g. help, check, quota) and print the reply",
  min: 1,
  run: async (ctx, [cmd, ...args]) => {
    const reply = await could(`run control command ${cmd!}`, () => ctx.client.control(cmd!, ...args));
    ctx.out(reply === '' || reply.endsWith('\n') ? reply : `${reply}\n`);
    return 0;
  },
};

const introduce: Command = {
  synopsis: 'DOMID MFN PORT',
  summary: 'introduce a domain (INTRODUCE); nxenstored then serves it on <rundir>/domains/DOMID/socket',
  min: 3,
  max: 3,
  run: async (ctx, [d, m, p]) => {
    const id = domid(d!);
    if (!/^-?[0-9]{1,20}$/.test(m!)) throw new UsageError(`bad frame number ${JSON.stringify(m)}`);
    const port = unsigned(p!, 'event channel');
    await could(`introduce domain ${id}`, () => ctx.client.introduce(id, BigInt(m!), port));
    return 0;
  },
};

const release: Command = {
  synopsis: 'DOMID',
  summary: 'release a domain (RELEASE)',
  min: 1,
  max: 1,
  run: async (ctx, [d]) => {
    const id = domid(d!);
    await could(`release domain ${id}`, () => ctx.client.release(id));
    return 0;
  },
};

const dump: Command = {
  synopsis: '[PATH]',
  summary: 'print the subtree below PATH (default /) as JSON: {"value", "perms", "children"}, read in one transaction',
  min: 0,
  max: 1,
  run: async (ctx, [path = '/']) => {
    const tree = await inTransaction(ctx.client, true, (t) => could(`dump ${path}`, () => dumpTree(t, path)));
    ctx.out(`${JSON.stringify(tree, null, 2)}\n`);
    return 0;
  },
};

async function readAll(source: AsyncIterable<string | Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of source) chunks.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
  return Buffer.concat(chunks).toString('utf8');
}

const restore: Command = {
  synopsis: 'FILE|- [PATH]',
  summary: 'write a dump back at PATH (default /) in one transaction, permissions included; other nodes are kept',
  min: 1,
  max: 2,
  run: async (ctx, [file, path = '/']) => {
    let text: string;
    try {
      if (file === '-') {
        if (ctx.io.stdin === undefined) throw new Failure('could not read the dump: no standard input');
        text = await readAll(ctx.io.stdin);
      } else {
        text = await readFile(file!, 'utf8');
      }
    } catch (e) {
      const reason = describe(e);
      if (reason === undefined) throw e;
      throw new Failure(`could not read ${file!}: ${reason}`, { cause: e });
    }
    let tree;
    try {
      tree = parseDump(text);
    } catch (e) {
      if (e instanceof DumpFormatError) throw new Failure(`could not restore ${file!}: invalid dump: ${e.message}`, { cause: e });
      throw e;
    }
    await inTransaction(ctx.client, true, (t) => could(`restore ${path}`, () => restoreTree(t, path, tree)));
    return 0;
  },
};

/** GET_QUOTA for every name: `name value` lines, names padded to one column. */
async function quotaTable(ctx: CommandContext, id: number | undefined): Promise<void> {
  const names = await could('list quotas', () => ctx.client.getQuota());
  const width = Math.max(0, ...names.map((n) => n.length));
  for (const name of names) {
    const value = await could(`get quota ${name}`, () => ctx.client.getQuota(name, id));
    ctx.out(`${name.padEnd(width)} ${value}\n`);
  }
}

const quota: Command = {
  synopsis: '[DOMID] [NAME] | set [DOMID] NAME VALUE',
  summary: 'show quotas (all, or NAME; global or DOMID\'s) or set one (0 = unlimited) via GET_QUOTA/SET_QUOTA',
  min: 0,
  max: 4,
  run: async (ctx, args) => {
    const isDomid = (s: string | undefined): s is string => s !== undefined && /^[0-9]+$/.test(s);
    if (args[0] === 'set') {
      const rest = args.slice(1);
      if (rest.length !== 2 && rest.length !== 3) throw new UsageError('quota set [DOMID] NAME VALUE');
      const id = rest.length === 3 ? domid(rest[0]!) : undefined;
      const [name, value] = rest.slice(-2) as [string, string];
      const n = unsigned(value, 'quota value');
      await could(`set quota ${name}`, () => ctx.client.setQuota(name, n, id));
      return 0;
    }
    if (args.length > 2 || (args.length === 2 && !isDomid(args[0]))) throw new UsageError('quota [DOMID] [NAME]');
    const id = isDomid(args[0]) ? domid(args[0]) : undefined;
    const name = args.length === 2 ? args[1] : id === undefined ? args[0] : undefined;
    if (name === undefined) {
      await quotaTable(ctx, id);
    } else {
      ctx.out(`${await could(`get quota ${name}`, () => ctx.client.getQuota(name, id))}\n`);
    }
    return 0;
  },
};

const token: Command = {
  synopsis: '--domid N',
  summary: 'print a bearer token for the HTTP gateway acting as guest N (needs the daemon started with --http)',
  options: { domid: { type: 'string' } },
  min: 0,
  max: 0,
  run: async (ctx, _args, opts) => {
    if (typeof opts.domid !== 'string') throw new UsageError('token needs --domid N');
    const id = domid(opts.domid);
    if (id === 0) throw new UsageError('domain 0 uses the privileged token in <rundir>/http-token');
    ctx.out(`${await issueGuestToken(ctx.rundir, id)}\n`);
    return 0;
  },
};

/** Every subcommand, in the order the usage lists them. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  read,
  write,
  mkdir,
  rm,
  ls,
  list,
  exists,
  chmod,
  getperms,
  watch,
  control,
  'live-update': liveUpdate,
  introduce,
  release,
  dump,
  restore,
  quota,
  token,
  ...HISTORY_COMMANDS,
};
