/**
 * immutable's `Map`, the one value the store takes from immutable-js, loaded with `require`.
 *
 * immutable ships as one CommonJS file of 212 KB (its ES build is not reachable by Node: no
 * `exports`, no `"type": "module"`). An ES `import` of a CommonJS file makes Node scan the whole
 * source with its JavaScript cjs-module-lexer to find the named exports, which cost about 80 ms of
 * CPU per start on Node 20, more than compiling it (issue 16: cold start near `node -e 0`).
 * `require` compiles it without that scan; it is the same module instance an `import` would get.
 */
import { createRequire } from 'node:module';
import type * as Immutable from 'immutable';

const immutable = createRequire(import.meta.url)('immutable') as typeof Immutable;

export const ImmMap = immutable.Map;
export type ImmMap<K, V> = Immutable.Map<K, V>;
