import { Op } from '../../../protocol/index.js';
import type { HandlerSpec } from '../handler.js';
import { control } from './control.js';
import { getDomainPath, introduce, isDomainIntroduced, release, resume, setTarget } from './domain.js';
import { getFeature, setFeature } from './feature.js';
import { getQuota, setQuota } from './quota.js';
import { transactionEnd, transactionStart } from './transaction.js';
import { directory, directoryPart, getPerms, mkdir, read, rm, setPerms, write } from './tree.js';
import { resetWatches, unwatch, watch } from './watch.js';

/**
 * The dispatch table: one row per message type the daemon answers (spec §2). Types not here —
 * WATCH_EVENT and ERROR sent by a client, the removed RESTRICT (20), anything unknown — are
 * ENOSYS. `writes` marks what a read-only connection may not do; Xen ≤ 4.14 refused WRITE, MKDIR,
 * RM, SET_PERMS, INTRODUCE and SET_TARGET there, and we also refuse the other requests that change
 * the daemon's state (RELEASE, RESUME, SET_FEATURE, SET_QUOTA, and the CONTROL commands that change something,
 * decided per command in control.ts): a read-only socket that can release domains would not be
 * read-only.
 */
export const HANDLERS: Readonly<Partial<Record<number, HandlerSpec>>> = {
  [Op.CONTROL]: { handle: control, privileged: true, tx: 'check' },
  [Op.DIRECTORY]: { handle: directory, tx: 'use' },
  [Op.READ]: { handle: read, tx: 'use' },
  [Op.GET_PERMS]: { handle: getPerms, tx: 'use' },
  [Op.WATCH]: { handle: watch, tx: 'ignore' },
  [Op.UNWATCH]: { handle: unwatch, tx: 'ignore' },
  [Op.TRANSACTION_START]: { handle: transactionStart, tx: 'check' },
  [Op.TRANSACTION_END]: { handle: transactionEnd, tx: 'use' },
  [Op.INTRODUCE]: { handle: introduce, privileged: true, writes: true, tx: 'check' },
  [Op.RELEASE]: { handle: release, privileged: true, writes: true, tx: 'check' },
  [Op.GET_DOMAIN_PATH]: { handle: getDomainPath, tx: 'check' },
  [Op.WRITE]: { handle: write, writes: true, tx: 'use' },
  [Op.MKDIR]: { handle: mkdir, writes: true, tx: 'use' },
  [Op.RM]: { handle: rm, writes: true, tx: 'use' },
  [Op.SET_PERMS]: { handle: setPerms, writes: true, tx: 'use' },
  [Op.IS_DOMAIN_INTRODUCED]: { handle: isDomainIntroduced, privileged: true, tx: 'check' },
  [Op.RESUME]: { handle: resume, privileged: true, writes: true, tx: 'check' },
  [Op.SET_TARGET]: { handle: setTarget, privileged: true, writes: true, tx: 'check' },
  [Op.RESET_WATCHES]: { handle: resetWatches, tx: 'ignore' },
  [Op.DIRECTORY_PART]: { handle: directoryPart, tx: 'use' },
  [Op.GET_FEATURE]: { handle: getFeature, tx: 'check' },
  [Op.SET_FEATURE]: { handle: setFeature, privileged: true, writes: true, tx: 'check' },
  [Op.GET_QUOTA]: { handle: getQuota, privileged: true, tx: 'check' },
  [Op.SET_QUOTA]: { handle: setQuota, privileged: true, writes: true, tx: 'check' },
};
