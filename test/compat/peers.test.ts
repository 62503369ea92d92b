/**
 * Same requests, same answers: Xen's own wire probes (`../shared/refd/probe.py`, 39 probes of
 * framing, tree, permissions, watches, transactions and domain messages) sent to nxenstored and to
 * the real cxenstored and oxenstored (Debian's Xen 4.17 builds, run without a hypervisor by
 * `../shared/refd/`). For every probe nxenstored must answer as one of the two Xen daemons does,
 * except where the README's compatibility section records a deliberate difference: those are
 * listed here with their reason, and the test fails if one of them stops differing (update the
 * README) or if any other probe differs from both (a regression, or a new difference to document).
 *
 * Needs `../shared/refd/setup.sh` to have run (CI's `.ci/run` does); fails with a clear message
 * otherwise.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, startDaemon, type RunningDaemon } from '../helpers/daemon.js';

const REFD = process.env['REFD_DIR'] ?? resolve(REPO, '..', 'shared', 'refd');
const XEN_DIR = process.env['XEN_DIR'] ?? join(REPO, '.xen-tools', 'refd');

/** Probes where nxenstored deliberately answers unlike both Xen daemons (README, compatibility). */
const DELIBERATE: Readonly<Record<string, string>> = {
  oversize_payload: 'len > 4096 closes the connection without a reply (cxenstored resets, oxenstored desynchronises)',
  directory_part: 'DIRECTORY_PART generation is a hash of the listing (cxenstored: a counter; oxenstored: ENOSYS)',
  domain_ops: 'GET_DOMAIN_PATH of a non-number is EINVAL (both daemons atoi it to 0)',
  bad_request_args: 'GET_DOMAIN_PATH with an empty domid is EINVAL (both answer /local/domain/0)',
  introduce_release: 'SET_TARGET to dom0 is ENOENT: nothing may act for dom0',
  control_cmds: 'CONTROL help lists our commands',
  unknown_type: 'GET_FEATURE (23, Xen 4.21) is implemented: a bad argument is EINVAL, not ENOSYS',
  tool_node: 'DIRECTORY / lists local and tool sorted (cxenstored: insertion order; oxenstored lost them to an earlier RM /)',
  empty_payload: 'READ with an empty payload is EINVAL (cxenstored ENOENT; oxenstored never answers)',
  release_dom0: 'DIRECTORY / sorted, after oxenstored wiped its tree and cxenstored lists in insertion order',
  rm_root_and_specials: 'DIRECTORY / sorted (cxenstored: insertion order; oxenstored: RM / wiped it)',
};

type Answers = Map<string, Map<string, string[]>>;

function parseProbe(text: string): Answers {
  const out: Answers = new Map();
  let current: Map<string, string[]> | undefined;
  for (const line of text.split('\n')) {
    const head = /^## (\S+)/.exec(line);
    if (head) {
      out.set(head[1]!, (current = new Map()));
      continue;
    }
    const row = /^ {3}(\S) {2}(.*)$/.exec(line);
    if (row && current) current.set(row[1]!, [...(current.get(row[1]!) ?? []), row[2]!]);
  }
  return out;
}

const same = (a: string[] | undefined, b: string[] | undefined) => JSON.stringify(a) === JSON.stringify(b);

describe('wire probes against cxenstored and oxenstored', () => {
  let nx: RunningDaemon;
  const peers: string[] = [];

  beforeAll(async () => {
    for (const f of ['start-cxenstored.sh', 'start-oxenstored.sh', 'probe.py']) {
      if (!existsSync(join(REFD, f))) throw new Error(`missing ${join(REFD, f)}: the reference daemons live in ../shared/refd`);
    }
    if (!existsSync(join(XEN_DIR, 'root'))) {
      throw new Error(`no ${XEN_DIR}/root: run 'bash test/setup/tools.sh' (npm test does), which runs ${join(REFD, 'setup.sh')} with XEN_DIR=${XEN_DIR}`);
    }
    nx = await startDaemon();
    for (const which of ['c', 'o']) {
      const dir = mkdtempSync(join(tmpdir(), `nxs-refd-${which}-`));
      peers.push(dir);
      execFileSync('bash', [join(REFD, `start-${which}xenstored.sh`), dir], { stdio: 'pipe', env: { ...process.env, XEN_DIR, XS_ACCESS_LOG: '0' } });
    }
  });

  afterAll(async () => {
    for (const dir of peers) {
      try {
        execFileSync('bash', [join(REFD, 'stop.sh'), dir], { stdio: 'pipe', env: { ...process.env, XEN_DIR } });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    await nx?.stop();
  });

  it('answers every probe as a Xen daemon does, but for the documented differences', async () => {
    const { stdout } = await promisify(execFile)(
      'python3',
      [join(REFD, 'probe.py'), `c=${peers[0]}/socket`, `o=${peers[1]}/socket`, `n=${nx.socket}`],
      { maxBuffer: 16 << 20 },
    );
    const answers = parseProbe(stdout);
    expect(answers.size).toBeGreaterThanOrEqual(39);
    const differing: string[] = [];
    for (const [probe, by] of answers) {
      if (by.has('*')) continue; // all three answered alike
      if (!same(by.get('n'), by.get('c')) && !same(by.get('n'), by.get('o'))) differing.push(probe);
    }
    const unexplained = differing.filter((p) => !(p in DELIBERATE));
    expect(unexplained.map((p) => `${p}: ${JSON.stringify(Object.fromEntries(answers.get(p)!))}`)).toEqual([]);
    expect(differing.sort()).toEqual(Object.keys(DELIBERATE).sort());
  });
});
