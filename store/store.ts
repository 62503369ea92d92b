import { ImmMap } from './imm-map.js';
import { XsNode } from './node.js';
import { DOM0_ONLY, type Perms } from './perms.js';
import type { SpecialName } from './path.js';
import { EMPTY_QUOTA, type Quota } from './quota.js';
import { countOwners } from './subtree.js';
import { addAll } from './quota.js';

/**
 * One version of the whole store, as an immutable value: the trie's root, the nodes each domain
 * owns, and the permissions of the two special watch names (which are not tree nodes: spec §8.6,
 * cxenstored's choice, recorded in the README). The daemon holds the one reference to the live
 * version (`Daemon.store`); a transaction holds the version it started from.
 *
 * `generation` numbers the committed versions: each commit that changes anything gets the next one.
 */
export interface Store {
  readonly root: XsNode;
  readonly quota: Quota;
  readonly special: SpecialPerms;
  readonly generation: number;
}

export type SpecialPerms = Readonly<Record<SpecialName, Perms>>;

const DEFAULT_SPECIAL: SpecialPerms = Object.freeze({
  '@introduceDomain': DOM0_ONLY,
  '@releaseDomain': DOM0_ONLY,
});

/**
 * `createStore()` is the initial tree: `/`, `/local`, `/tool`, `/tool/xenstored`, all `n0`
 * (cxenstored's tree plus oxenstored's `/local`, spec §4.2), at generation 0.
 */
export function createStore(): Store {
  const leaf = (v = '') => XsNode.leaf(v, DOM0_ONLY);
  const tool = new XsNode('', DOM0_ONLY, ImmMap([['xenstored', leaf()]]));
  const root = new XsNode(
    '',
    DOM0_ONLY,
    ImmMap([
      ['local', leaf()],
      ['tool', tool],
    ]),
  );
  return fromRoot(root);
}

/** `fromRoot(root, generation)` builds a store around a tree, counting its owners once. */
export function fromRoot(root: XsNode, generation = 0, special: SpecialPerms = DEFAULT_SPECIAL): Store {
  return Object.freeze({ root, quota: addAll(EMPTY_QUOTA, countOwners(root)), special, generation });
}

/**
 * `advance(next, live)` stamps a new version that follows `live`: `live` itself when `next`
 * changed nothing (unchanged means identical), else `next` with generation `live.generation + 1`.
 */
export function advance(next: Store, live: Store): Store {
  if (next.root === live.root && next.special === live.special && next.quota === live.quota) return live;
  return Object.freeze({ root: next.root, quota: next.quota, special: next.special, generation: live.generation + 1 });
}
