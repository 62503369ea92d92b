#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * nxenstored: the executable. The runtime check and the V8 compile cache (runtime.ts) come first,
 * and only then is the daemon loaded: an ES module's static imports are all parsed and compiled
 * before any of its code runs, so a cache turned on by one of them would come too late for the
 * rest (issue 16: module loading was most of a cold start's CPU).
 */
import './runtime.js';

await import('./daemon-main.js');
