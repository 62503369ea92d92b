/**
 * A READ below a directory a start has not read yet finds its one child in the snapshot's block
 * without building the others (issue 16: store/snapshot-blocks.ts `Subtree3.find`). That is a scan of
 * the block instead of a map lookup, so a guest asking again and again for names under such a
 * directory (missing ones: nothing is remembered for them) must not get a scan per request for
 * ever: after `FINDS` scan(s) the children are read whole, once, and every later lookup is a map
 * lookup, whatever is asked.
 */
import { Map as ImmMap } from 'immutable';
import { describe, expect, it } from 'vitest';
import { DOM0_ONLY, XsNode, bufferSource, encodeSnapshot, fromRoot, lookup, openSnapshot } from '../../store/index.js';
import { FINDS } from '../../store/snapshot-blocks.js';

function bigSnapshot(n: number): Buffer {
  const kids: [string, XsNode][] = [];
  for (let i = 0; i < n; i++) kids.push([`k${i}`, XsNode.leaf(`value ${i}`, DOM0_ONLY)]);
  return encodeSnapshot(fromRoot(new XsNode('', DOM0_ONLY, ImmMap([['big', new XsNode('', DOM0_ONLY, ImmMap(kids))]])), 3));
}

describe('lookups under a directory not read yet', () => {
  it('scan its block at most FINDS times, then the children are read whole once', () => {
    const buf = bigSnapshot(5000);
    const source = bufferSource(buf);
    let read = 0;
    const { store } = openSnapshot({ size: source.size, read: (at, length) => (read += length, source.read(at, length)) });
    const big = lookup(store.root, ['big'])!;
    const opened = read;
    expect(big.unread).toBeDefined();
    for (let i = 0; i < 1000; i++) expect(lookup(store.root, ['big', `missing${i}`])).toBeUndefined();
    // The block of 5,000 children is nearly all the file: FINDS scan(s) and one whole read of it.
    expect(read - opened).toBeLessThanOrEqual((FINDS + 1) * buf.length);
    expect(big.unread).toBeUndefined();
    expect(lookup(store.root, ['big', 'k4999'])!.value).toBe('value 4999');
  });

  it('keep the node found: the whole map holds that very object', () => {
    const { store } = openSnapshot(bufferSource(bigSnapshot(1000)));
    const big = lookup(store.root, ['big'])!;
    const k7 = lookup(store.root, ['big', 'k7'])!;
    expect(k7.value).toBe('value 7');
    expect(big.unread).toBeDefined();
    expect(lookup(store.root, ['big', 'k7'])).toBe(k7);
    expect(big.children.size).toBe(1000);
    expect(big.children.get('k7')).toBe(k7);
    expect(big.children.get('k999')!.value).toBe('value 999');
  });
});
