'use strict';
/**
 * In place of `assert` for sonic-boom in the daemon's bundle (src/bundle/bundle.mjs), which calls
 * `assert(condition, message)` only. Loading Node's (with its diff and error machinery) cost ~2 ms
 * of every cold start on Node 22 and 24 (issue 16). Throws what Node's would: an AssertionError,
 * code ERR_ASSERTION, with the message.
 */
module.exports = function assert(value, message) {
  if (value) return;
  const err = new Error(message ?? 'The expression evaluated to a falsy value');
  err.name = 'AssertionError';
  err.code = 'ERR_ASSERTION';
  err.actual = value;
  err.expected = true;
  err.operator = '==';
  throw err;
};
