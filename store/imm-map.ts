/**
 * immutable's `Map`, the one value the store takes from immutable-js.
 *
 * immutable ships as one CommonJS (UMD) file of 212 KB, whose named exports Node cannot list: the
 * default import is its `module.exports`. The daemon runs bundled (package.json `bundle`), where
 * this import is given immutable's ES module instead and esbuild keeps only what `Map` needs
 * (src/bundle/bundle.mjs; issue 16: cold start near `node -e 0`). Code that imports tsc's
 * unbundled output (benches, tools) pays Node's cjs-module-lexer scan of the file on its first
 * import, about 80 ms of CPU on Node 20.
 */
import Immutable from 'immutable';

export const ImmMap = Immutable.Map;
export type ImmMap<K, V> = Immutable.Map<K, V>;
