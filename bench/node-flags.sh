#!/usr/bin/env bash
# bench/node-flags.sh ROUNDS LOAD...: the daemon with and without the V8 options its executable
# runs with (the `#!` line of dist/src/nxenstored.js, src/node-flags.ts), in alternate rounds on
# one machine. Each round starts a daemon of each kind on a temporary run directory and, for each
# LOAD of the loadgen (write, read, vm, ...), warms it for 1 s (2 s of load) and counts 4 s:
# requests answered, p99 (µs) and the daemon's CPU (clock ticks of utime + stime, 100 a second).
# NODE picks the daemon's runtime (default: node); the loadgen runs on `node`. Build first.
#
#   bash bench/node-flags.sh 4 write read vm
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
rounds=${1:?usage: bench/node-flags.sh ROUNDS LOAD...}
shift
[ $# -gt 0 ] || { echo "usage: bench/node-flags.sh ROUNDS LOAD..." >&2; exit 2; }
node=${NODE:-node}
entry=dist/src/nxenstored.js
[ -f "$entry" ] || { echo "$entry is missing: npm run build" >&2; exit 1; }
flags=$(head -1 "$entry" | sed -n 's|^#!/usr/bin/env -S node ||p')
[ -n "$flags" ] || { echo "$entry's #! line gives node no options" >&2; exit 1; }
echo "# $("$node" --version); options: $flags"
echo "# round kind load requests p99-us cpu-ticks"
run=
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; fi; if [ -n "$run" ]; then rm -rf "$run"; fi' EXIT
for round in $(seq "$rounds"); do
  for kind in default flags; do
    run=$(mktemp -d)
    opts=()
    [ "$kind" = flags ] && read -r -a opts <<< "$flags"
    "$node" "${opts[@]}" "$entry" --rundir "$run" --log-level error & pid=$!
    for _ in $(seq 100); do [ -S "$run/socket" ] && break; sleep 0.1; done
    [ -S "$run/socket" ] || { echo "the daemon ($kind) did not listen" >&2; exit 1; }
    for load in "$@"; do
      node dist/bench/loadgen/main.js --socket "$run/socket" --load "$load" --duration 2 --warmup 1 > /dev/null
      t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
      out=$(node dist/bench/loadgen/main.js --socket "$run/socket" --load "$load" --duration 4 --warmup 0 --no-prepare)
      t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
      ops=$(grep -oE '"ops":[0-9]+' <<< "$out" | grep -oE '[0-9]+$')
      p99=$(grep -oE '"p99Us":[0-9]+' <<< "$out" | grep -oE '[0-9]+$')
      echo "$round $kind $load $ops $p99 $((t1 - t0))"
    done
    kill "$pid"
    wait "$pid" 2> /dev/null || true
    pid=
    rm -rf "$run"
    run=
  done
done
