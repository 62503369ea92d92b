import { XsError } from '../protocol/index.js';
import { childPath } from './path.js';
import { sanitise } from './sanitise.js';

/**
 * The tree view of `xenstore-ls`, byte for byte (`xenstore_client.c` `do_ls`), so scripts and
 * eyes used to it can switch to `nxs ls`:
 *
 *     name = "value"                      one line per node, depth-first, in DIRECTORY order
 *      child = "escaped\x01value"         indented one space per level, values sanitised
 *     long = "trunc\..."                  lines cut to the width (80 unless a terminal)
 *     a = "v" . . . . . . . .  (n0,r5)    -p: dotted padding to column 60, then permissions
 *     /a/b = "v"   (n0)                   -f: full paths, never cut, no padding
 *     secret:                             a value that cannot be read
 *
 * Like xenstore-ls it reads node by node without a transaction; a node that disappears
 * while it walks (ENOENT below the top) is skipped.
 */

/** What the listing needs: XsClient and TxView both fit. */
export interface TreeReader {
  directory(path: string): Promise<string[]>;
  readBytes(path: string): Promise<Buffer>;
  getPerms(path: string): Promise<string[]>;
}

export interface ListOptions {
  /** `-p`: permissions after each value. */
  readonly perms: boolean;
  /** `-f`: full paths, no width limit. */
  readonly fullPaths: boolean;
  /** xenstore-ls `max_width`: terminal columns − 2, or 80 when stdout is not a terminal. */
  readonly width: number;
}

export interface ListOutput {
  /** Listing text (stdout). */
  out(text: string): void;
  /** A node whose permissions could not be read (stderr), as xenstore-ls warns. */
  warn(text: string): void;
}

/** A directory of the walk could not be listed: which one, and why (`cause`). */
export class ListingError extends Error {
  override readonly name = 'ListingError';
  constructor(
    readonly path: string,
    options: ErrorOptions,
  ) {
    super(`could not list ${path}`, options);
  }
}

/** Width of ` = "..."`, which xenstore-ls keeps room for after a name (`TAG_LEN`). */
const TAG_LEN = 8;
/** Where `-p` padding ends (`desired_width`). */
const DESIRED_WIDTH = 60;

/** `%.*s`: at most `n` chars; a negative precision means no limit, as in C. */
const upTo = (s: string, n: number): string => (n < 0 ? s : s.slice(0, n));

/**
 * `listTree(reader, path, opts, output)` prints the subtree below `path`. A directory that
 * cannot be listed ends the walk with a ListingError naming it, as xenstore-ls exits on
 * `xs_directory (<path>)`; only ENOENT below the top is skipped.
 */
export async function listTree(reader: TreeReader, path: string, opts: ListOptions, output: ListOutput): Promise<void> {
  // -f lifts the width limit and the padding target (xenstore-ls: max_width = INT_MAX/2, desired_width = 0).
  const width = opts.fullPaths ? Number.MAX_SAFE_INTEGER : opts.width;
  const padTo = opts.fullPaths ? 0 : Math.min(DESIRED_WIDTH, width);

  const walk = async (dir: string, depth: number): Promise<void> => {
    let names: string[];
    try {
      names = await reader.directory(dir);
    } catch (e) {
      if (depth > 0 && e instanceof XsError && e.code === 'ENOENT') return; // removed while we walked
      throw new ListingError(dir, { cause: e });
    }
    for (const name of names) {
      const path = childPath(dir, name);
      let line: string;
      if (opts.fullPaths) {
        line = path; // xenstore-ls does not count it in the line width
      } else {
        line = ' '.repeat(depth) + upTo(name, width - TAG_LEN - depth);
      }
      let used = opts.fullPaths ? 0 : line.length;

      const value = await reader.readBytes(path).catch((e: unknown) => {
        if (e instanceof XsError) return undefined;
        throw e;
      });
      if (value === undefined) {
        line += ':\n';
      } else if (width < used + value.length + TAG_LEN) {
        line += ` = "${upTo(sanitise(value), width - TAG_LEN - used)}\\..."`;
      } else {
        const shown = ` = "${sanitise(value)}"`;
        line += shown;
        used += shown.length;
        if (opts.perms) {
          line += ' ';
          for (used++; used < padTo; used++) line += used & 1 ? '.' : ' ';
        }
      }

      if (opts.perms) {
        try {
          line += `  (${(await reader.getPerms(path)).join(',')})`;
        } catch (e) {
          if (!(e instanceof XsError)) throw e;
          output.warn(`could not access permissions for ${name}: ${e.code}`);
        }
      }
      output.out(`${line}\n`);
      await walk(path, depth + 1);
    }
  };
  await walk(path, 0);
}
