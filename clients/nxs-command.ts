import { XsError } from '../protocol/index.js';
import type { XsClient } from './client.js';
import { ConnectionClosedError, ProtocolError } from './errors.js';
import type { TxView } from './transaction.js';

/**
 * What one `nxs` subcommand is, what it is given, and how it fails. The table of commands is
 * `nxs-commands.ts`; `nxs.ts` parses the command line and runs one.
 */

/** Where the CLI writes and what it reads; `main` takes it so tests can capture output. */
export interface NxsIo {
  readonly stdout: { write(chunk: string | Uint8Array): unknown };
  readonly stderr: { write(chunk: string): unknown };
  /** For `restore -`. */
  readonly stdin?: AsyncIterable<string | Buffer>;
  /** Environment for the default socket (default: process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Stops `watch` (default: SIGINT/SIGTERM while it runs). */
  readonly signal?: AbortSignal;
  /** Terminal width when stdout is a terminal, for `ls` (xenstore-ls uses columns − 2, else 80). */
  readonly columns?: number;
}

/** Option values as `util.parseArgs` returns them. */
export type OptionValues = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

export interface CommandContext {
  readonly client: XsClient;
  readonly io: NxsIo;
  /** The daemon's run directory (`--rundir`, else the socket's directory or the default). */
  readonly rundir: string;
  /** Writes to stdout. */
  out(chunk: string | Uint8Array): void;
  /** Writes `nxs: <message>` to stderr (a warning; the command goes on). */
  warn(message: string): void;
}

export interface Command {
  /** Arguments after the command name, e.g. `[-p] [-R] PATH...`. */
  readonly synopsis: string;
  /** One line for the usage listing. */
  readonly summary: string;
  /** `util.parseArgs` options; `-h/--help` is added to every command. */
  readonly options?: Readonly<Record<string, { readonly type: 'boolean' | 'string'; readonly short?: string }>>;
  /** Positional argument count: at least `min`, at most `max` (default: no limit). */
  readonly min: number;
  readonly max?: number;
  /** Runs the command; resolves to the exit code (0, or 1 when the answer is "no", like `exists`). */
  run(ctx: CommandContext, args: string[], opts: OptionValues): Promise<number>;
}

/** Bad command line: `nxs` prints the message and the usage and exits with 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** An operation failed in an expected way: `nxs` prints `nxs: <message>` and exits with 1. */
export class Failure extends Error {
  override readonly name = 'Failure';
}

/**
 * `describe(e)` is the short reason shown after "could not …": the Xen error name (ENOENT),
 * a socket error code (ECONNREFUSED), or the message of a connection failure. Undefined for
 * anything else — a bug, which should surface with its stack.
 */
export function describe(e: unknown): string | undefined {
  if (e instanceof XsError) return e.message === e.code ? e.code : `${e.code} (${e.message})`;
  if (e instanceof ConnectionClosedError || e instanceof ProtocolError) return e.message;
  if (e instanceof Error && 'code' in e && typeof e.code === 'string' && 'syscall' in e) return e.code;
  return undefined;
}

/** `could(what, fn)` runs `fn`; an expected failure becomes `Failure("could not <what>: <reason>")`. */
export async function could<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const reason = describe(e);
    if (reason === undefined) throw e;
    throw new Failure(`could not ${what}: ${reason}`, { cause: e });
  }
}

/** The tree operations a command uses, alike on XsClient (no transaction) and TxView. */
export type TreeOps = Pick<
  TxView,
  'read' | 'readBytes' | 'write' | 'mkdir' | 'rm' | 'directory' | 'getPerms' | 'setPerms' | 'exists'
>;

/**
 * `inTransaction(client, use, fn)` runs `fn` in a transaction with EAGAIN retries when `use`,
 * else directly on the client. The xenstore-* tools use a transaction whenever a command does
 * more than one operation, and so does nxs. `fn` must not print: it may run several times.
 */
export function inTransaction<T>(client: XsClient, use: boolean, fn: (t: TreeOps) => Promise<T>): Promise<T> {
  return use ? could('complete the transaction', () => client.transaction(fn)) : fn(client);
}
