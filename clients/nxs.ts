import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { XsClient } from './client.js';
import { Failure, UsageError, describe, type Command, type NxsIo } from './nxs-command.js';
import { COMMANDS } from './nxs-commands.js';
import { defaultRundir, defaultSocketPath, guestSocketPath, readOnlySocketPath } from './socket-path.js';

/**
 * `nxs`, the admin CLI: global flags, then one subcommand from the table in nxs-commands.ts.
 *
 * Exit status, for scripts: 0 success; 1 the operation failed (`nxs: could not read /x: ENOENT`
 * on stderr), or the answer is "no" (`exists`); 2 the command line is wrong (message and usage
 * on stderr). Expected failures never print a stack trace.
 */

export type { NxsIo } from './nxs-command.js';

const GLOBAL_USAGE = `usage: nxs [GLOBAL OPTIONS] COMMAND [ARGS...]

global options:
  --socket PATH   the daemon's socket (default: $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket,
                  else /run/xenstored/socket)
  --rundir DIR    the daemon's run directory: DIR/socket, or with --ro / --domid the sockets below
  --ro            use the read-only socket <rundir>/socket_ro
  --domid N       act as unprivileged domain N, over <rundir>/domains/N/socket (after INTRODUCE)
  -s              accepted for xenstore-* compatibility (nxs always uses the socket)
  -h, --help      this text; COMMAND -h for one command`;

/** `usage()` is the full usage text: global options, then every command. */
export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name} ${c.synopsis}\n      ${c.summary}`);
  return `${GLOBAL_USAGE}\n\ncommands:\n${lines.join('\n')}\n\nexit status: 0 success, 1 failure (or "no" from exists), 2 usage error\n`;
}

function commandUsage(name: string, c: Command): string {
  return `usage: nxs [GLOBAL OPTIONS] ${name} ${c.synopsis}\n  ${c.summary}\n`;
}

interface Globals {
  socket?: string;
  rundir?: string;
  domid?: number;
  ro: boolean;
  help: boolean;
}

/** Reads the global flags before the command name; returns them and the index of the command. */
function parseGlobals(argv: readonly string[]): { globals: Globals; next: number } {
  const globals: Globals = { ro: false, help: false };
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('-'); i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0 && arg.startsWith('--')) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    if (name === '--') {
      i++;
      break;
    } else if (name === '-h' || name === '--help') globals.help = true;
    else if (name === '-s') continue; // xenstore-* "use the socket": nxs always does
    else if (name === '--ro') globals.ro = true;
    else if (name === '--socket') globals.socket = value();
    else if (name === '--rundir') globals.rundir = value();
    else if (name === '--domid') {
      const v = value();
      if (!/^[0-9]{1,5}$/.test(v)) throw new UsageError(`bad --domid ${JSON.stringify(v)}`);
      globals.domid = Number(v);
    } else throw new UsageError(`unknown option ${arg}`);
  }
  return { globals, next: i };
}

/** The socket the global flags choose (spec §1.1 defaults; see socket-path.ts). */
function socketOf(g: Globals, env: Readonly<Record<string, string | undefined>>): string {
  if (g.socket !== undefined) {
    if (g.ro || g.domid !== undefined || g.rundir !== undefined) throw new UsageError('--socket names the socket: it cannot be combined with --rundir, --ro or --domid');
    return g.socket;
  }
  if (g.ro && g.domid !== undefined) throw new UsageError('--ro and --domid choose different sockets');
  const rundir = g.rundir ?? defaultRundir(env);
  if (g.domid !== undefined) return guestSocketPath(rundir, g.domid);
  if (g.ro) return readOnlySocketPath(rundir);
  return g.rundir !== undefined ? join(g.rundir, 'socket') : defaultSocketPath(env);
}

/**
 * The process's own streams. A failing stdout ends the program: quietly for EPIPE (`nxs watch / |
 * head -1`: the reader is gone, as a C tool dies of SIGPIPE), else with the reason and 1. Node
 * reports it as an event, outside any promise `main` could return through.
 */
function processIo(): NxsIo {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') process.stderr.write(`nxs: could not write output: ${e.code ?? e.message}\n`);
    process.exit(e.code === 'EPIPE' ? 0 : 1);
  });
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    // A getter: touching process.stdin sets it up, which only `restore -` needs.
    get stdin() {
      return process.stdin;
    },
    env: process.env,
    columns: process.stdout.isTTY ? process.stdout.columns : undefined,
  };
}

/**
 * `main(argv, io)` runs `nxs` with `argv` (without node and script) and resolves to the exit
 * code; src/nxs.ts exits with it. The only exit of its own is the default io's broken stdout.
 */
export async function main(argv: readonly string[], io: NxsIo = processIo()): Promise<number> {
  const fail = (message: string, text: string): number => {
    io.stderr.write(`nxs: ${message}\n${text}`);
    return 2;
  };

  let globals: Globals;
  let next: number;
  try {
    ({ globals, next } = parseGlobals(argv));
  } catch (e) {
    if (e instanceof UsageError) return fail(e.message, usage());
    throw e;
  }
  const name = argv[next];
  if (globals.help) {
    const c = name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name]! : undefined;
    io.stdout.write(c === undefined ? usage() : commandUsage(name!, c));
    return 0;
  }
  if (name === undefined) return fail('no command given', usage());
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) return fail(`unknown command ${JSON.stringify(name)}`, usage());

  let args: string[];
  let opts: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  let path: string;
  try {
    const parsed = parseArgs({
      args: argv.slice(next + 1),
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.values.help === true) {
      io.stdout.write(commandUsage(name, command));
      return 0;
    }
    args = parsed.positionals;
    opts = parsed.values;
    if (args.length < command.min || args.length > (command.max ?? Infinity)) {
      throw new UsageError(`${name}: wrong number of arguments`);
    }
    path = socketOf(globals, io.env ?? process.env);
  } catch (e) {
    // util.parseArgs reports bad options as TypeErrors with an ERR_PARSE_ARGS_* code.
    const parseError = e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS');
    if (e instanceof UsageError || parseError) return fail((e as Error).message, commandUsage(name, command));
    throw e;
  }

  let client: XsClient;
  try {
    client = await XsClient.connect(path);
  } catch (e) {
    const reason = describe(e);
    if (reason === undefined) throw e;
    io.stderr.write(`nxs: could not connect to ${path}: ${reason}\n`);
    return 1;
  }
  try {
    return await command.run(
      {
        client,
        io,
        rundir: globals.rundir ?? (globals.socket !== undefined ? dirname(globals.socket) : defaultRundir(io.env ?? process.env)),
        out: (chunk) => io.stdout.write(chunk),
        warn: (message) => io.stderr.write(`nxs: ${message}\n`),
      },
      args,
      opts,
    );
  } catch (e) {
    if (e instanceof UsageError) return fail(e.message, commandUsage(name, command));
    if (e instanceof Failure) {
      io.stderr.write(`nxs: ${e.message}\n`);
      return 1;
    }
    const reason = describe(e);
    if (reason === undefined) throw e;
    io.stderr.write(`nxs: ${name} failed: ${reason}\n`);
    return 1;
  } finally {
    await client.close();
  }
}
