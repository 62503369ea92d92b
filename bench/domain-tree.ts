import { Map as ImmMap } from 'immutable';
import { fromRoot, parsePerms, XsNode, type Store } from '../store/index.js';

/**
 * `domainTree(n)` is a store of about `n` nodes for the lifecycle benchmarks (cold start, recovery,
 * live update): `/local/domain/<d>/data/k<j>`, 1 000 keys per domain, each domain owned by its
 * guest (`n<d>`, `r0`), values of 12–20 bytes. Built in bulk (`fromRoot`), not through requests.
 */
export function domainTree(n: number): Store {
  const perDomain = Math.min(1000, n);
  const domains = Math.max(1, Math.round(n / (perDomain + 2)));
  const doms: [string, XsNode][] = [];
  for (let d = 1; d <= domains; d++) {
    const perms = parsePerms([`n${d}`, 'r0']);
    const keys: [string, XsNode][] = [];
    for (let j = 0; j < perDomain; j++) keys.push([`k${j}`, XsNode.leaf(`value-${d}-${j}`, perms)]);
    const data = new XsNode('', perms, ImmMap(keys));
    doms.push([String(d), new XsNode('', perms, ImmMap([['data', data]]))]);
  }
  const n0 = parsePerms(['n0']);
  const local = new XsNode('', n0, ImmMap([['domain', new XsNode('', n0, ImmMap(doms))]]));
  return fromRoot(new XsNode('', n0, ImmMap([['local', local]])), 1);
}
