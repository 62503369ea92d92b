#!/usr/bin/env bash
# History's cost per write, history on against off (issue 14), builds side by side, alternated
# round by round so that a noisy machine's drift falls on all of them alike.
#
#   bench/history-cost.sh in-process ROUNDS "NAME DIST RECORDS" ...
#       node DIST/bench/in-process.js --load write --rounds ${WRITE_ROUNDS:-3000} --history-records RECORDS
#       (RECORDS 0: history off); prints each one's µs of CPU per write, their medians, and the
#       median of each round's ratio to the first one named.
#   bench/history-cost.sh wire ROUNDS "NAME DIST [daemon args]" ...
#       DIST/src/nxenstored.js on a temporary run directory, one at a time; the loadgen's write
#       load (8 connections x 16 pipelined) for ${WARM:-2} s of warm-up, then 4 s counted: the daemon's CPU
#       (/proc/PID/task/*/schedstat, ns) per write, the writes, the p99. `@run` in the daemon's
#       arguments is that run directory, fresh for each daemon: "on dist --data-dir @run/data".
#   bench/history-cost.sh together ROUNDS "NAME DIST [daemon args]" ...
#       As wire, but every build's daemon runs at once, each under its own loadgen: the noise of a
#       moment falls on all alike, and a round's ratios spread less (two copies of one build:
#       quartiles within about ±5%, medians within 2 points of each other in 12-16 rounds). Two
#       cores shared by four daemons and four loadgens: what memory costs weighs more than alone.
#   bench/history-cost.sh cachegrind 1 "NAME DIST RECORDS" ...       (the rounds argument is unused)
#       The in-process load under valgrind's cachegrind with cache simulation (first-level
#       instruction cache 32 KiB, data 48 KiB, last level 1 MiB: this machine's L2), one thread, a
#       predictable GC and performance.now a counter (input slices never run out, so a run's work
#       does not depend on its speed), at ${LO:-300} and ${HI:-1200} rounds of 128 writes: per
#       write between the two, instructions, I1 misses, D1 read misses, last-level data misses.
#       Needs valgrind; 5-7 minutes a build. Not exact: compiles and deopts that fall between the
#       two count as the writes' cost (with LO=200 HI=500 one build gave 29.2k and 32.6k
#       instructions in two runs); compare builds within one run. Nor does it set the collector
#       apart: a mark-compact between the two lengths in one build and not the other put ~2,600
#       more instructions a write in its total (RESULTS, eighth pass); its I1 misses are not
#       moved by it (the collector runs in loops). `attribute` shows the collector's share apart.
#   bench/history-cost.sh attribute 1 "NAME DIST RECORDS" ...        (the rounds argument is unused)
#       The same load, at the same two lengths, under callgrind with the same caches and V8's
#       names for its compiled code (--perf-basic-prof): per write, each function's instructions
#       and I1 misses, the collector's apart, then each later build's difference from the first
#       by function (dist/bench/callgrind-symbols.js). ~8 minutes a build; builds run one at a time.
#
# WARM, the wire modes' seconds of warm-up (default 2; with four daemons at once a default window of
# 200,000 records fills during the counted 4 s, with WARM=8 before them). LOAD_ARGS, the loadgen's
# options for the wire mode (default none: 8 connections x 16 pipelined;
# `--depth 1` is request and reply, one at a time per connection, as libxenstore's callers
# and the xenstore-* tools send them). NODE picks the runtime (default: node); NODE_FLAGS, Node's options for the wire mode's daemons
# (e.g. those of the executable's #! line, src/node-flags.ts: --max-semi-space-size=8; default
# none, as before that line had them). bench/RESULTS.md, "History", fifth pass, was made with
#   bench/history-cost.sh in-process 10 "off dist 0" "before /tmp/base/dist 200000" "after dist 200000"
#   bench/history-cost.sh wire 6 "off dist --history-records 0" "before /tmp/base/dist" "after dist"
# and its sixth pass's counts with
#   bench/history-cost.sh cachegrind 1 "off dist 0" "before /tmp/base/dist 20000" "after dist 20000"
set -euo pipefail
mode=$1; rounds=$2; shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp)
trap 'rm -f "$out" "$out".*' EXIT
node=${NODE:-node}
# The valgrind modes: two lengths of the in-process load, this machine's caches, and
# performance.now a counter (input slices never run out, so a run's work does not depend on its speed).
lo=${LO:-300}; hi=${HI:-1200}
caches=(--cache-sim=yes --I1=32768,8,64 --D1=49152,12,64 --LL=1048576,16,64)
clock='data:text/javascript,let t=0;Object.defineProperty(globalThis.performance,"now",{value:()=>(t+=0.001),configurable:true,writable:true});'
if [ "$mode" = cachegrind ]; then
  for cfg in "$@"; do
    read -r name dist records <<< "$cfg"
    for n in "$lo" "$hi"; do
      # 128 writes a round: the in-process write load's 8 clients x 16 pipelined.
      valgrind --tool=cachegrind "${caches[@]}" --cachegrind-out-file="$out.$n" \
        "$node" --single-threaded --predictable-gc-schedule --import "$clock" "$dist/bench/in-process.js" --load write --rounds "$n" --history-records "$records" > /dev/null 2> "$out.err" ||
        { echo "history-cost.sh: $name at $n rounds failed:" >&2; grep -v "^==" "$out.err" | tail -5 >&2; exit 1; }
    done
    python3 - "$name" "$out.$lo" "$out.$hi" $((hi - lo)) << 'PY'
import sys
def summary(path):
    for line in open(path):
        if line.startswith('events:'): events = line.split()[1:]
        if line.startswith('summary:'): return dict(zip(events, map(int, line.split()[1:])))
name, a, b, rounds = sys.argv[1], summary(sys.argv[2]), summary(sys.argv[3]), int(sys.argv[4])
per = {k: (b[k] - a[k]) / (rounds * 128) for k in a}
print(f"{name:10s} instructions {per['Ir']:.0f}  I1 misses {per['I1mr']:.1f}  D1 read misses {per['D1mr']:.1f}  last-level data misses {per['DLmr'] + per['DLmw']:.1f}  (per write)")
PY
    rm -f "$out.$lo" "$out.$hi"
  done
  exit 0
fi
if [ "$mode" = attribute ]; then
  args=()
  for cfg in "$@"; do
    read -r name dist records <<< "$cfg"
    for n in "$lo" "$hi"; do
      # Node writes /tmp/perf-PID.map; under valgrind PID is valgrind's, which its log names.
      valgrind --tool=callgrind "${caches[@]}" --dump-instr=yes --compress-strings=no --compress-pos=no --callgrind-out-file="$out.$name.$n" \
        "$node" --perf-basic-prof --single-threaded --predictable-gc-schedule --import "$clock" "$dist/bench/in-process.js" --load write --rounds "$n" --history-records "$records" > /dev/null 2> "$out.err" ||
        { echo "history-cost.sh: $name at $n rounds failed:" >&2; grep -v "^==" "$out.err" | tail -5 >&2; exit 1; }
      pid=$(grep -m1 -oE '^==[0-9]+==' "$out.err" | tr -d =)
      mv "/tmp/perf-$pid.map" "$out.$name.$n.map"
    done
    args+=("$name" "$out.$name.$lo" "$out.$name.$lo.map" "$out.$name.$hi" "$out.$name.$hi.map")
  done
  node "$here/dist/bench/callgrind-symbols.js" $(((hi - lo) * 128)) "${args[@]}"
  exit 0
fi
schedstat() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
# The wire modes' pieces. `daemon DIST RUN ARGS` starts a daemon of that build in the background on
# run directory RUN (`@run` in ARGS is RUN): `$!` is its pid. `ready RUN` waits for its socket.
daemon() {
  # shellcheck disable=SC2086 # Node's options and the daemon's arguments, split on purpose
  "$node" ${NODE_FLAGS:-} "$1/src/nxenstored.js" --rundir "$2" --log-level error ${3//@run/$2} &
}
ready() { for _ in $(seq 1 100); do [ -S "$1/socket" ] && break; sleep 0.05; done; }
# The loadgen's write load on RUN's socket: WARM s of warm-up (`warm RUN`), then 4 s counted (`count
# RUN`: the loadgen's JSON line).
# shellcheck disable=SC2086 # the loadgen's options, split on purpose
warm() { node "$here/dist/bench/loadgen/main.js" --socket "$1/socket" --load write ${LOAD_ARGS:-} --duration "${WARM:-2}" --warmup 1 > /dev/null; }
# shellcheck disable=SC2086
count() { node "$here/dist/bench/loadgen/main.js" --socket "$1/socket" --load write ${LOAD_ARGS:-} --duration 4 --warmup 0 --no-prepare; }
# `line ROUND NAME NS RESULT`: a round's line, the daemon's CPU per write (NS of it over RESULT's
# writes), the writes and the p99.
line() {
  local ops p99
  ops=$(grep -oE '"ops":[0-9]+' <<< "$4" | grep -oE '[0-9]+$')
  p99=$(grep -oE '"p99Us":[0-9]+' <<< "$4" | grep -oE '[0-9]+$')
  echo "$1 $2 $(awk -v c="$3" -v n="$ops" 'BEGIN {printf "%.3f", c / 1000 / n}') $ops $p99" >> "$out"
}
if [ "$mode" = together ]; then
  # Every build's daemon at once, each with its own loadgen: a moment's noise (another tenant, the
  # host's frequency) falls on all of them alike, so a round's ratios vary less than those of
  # daemons run one after another (bench/RESULTS.md, "History", fifteenth pass). The start order
  # rotates from round to round.
  cfgs=("$@")
  for r in $(seq 1 "$rounds"); do
    pids=(); runs=(); loads=()
    for i in "${!cfgs[@]}"; do runs[i]=$(mktemp -d); done
    for j in "${!cfgs[@]}"; do
      i=$(((j + r) % ${#cfgs[@]}))
      read -r name dist extra <<< "${cfgs[i]}"
      daemon "$dist" "${runs[i]}" "$extra"
      pids[i]=$!
    done
    for run in "${runs[@]}"; do ready "$run"; done
    for run in "${runs[@]}"; do warm "$run" & loads+=($!); done
    wait "${loads[@]}"
    c0=(); for i in "${!pids[@]}"; do c0[i]=$(schedstat "${pids[i]}"); done
    loads=()
    for i in "${!runs[@]}"; do count "${runs[i]}" > "$out.res$i" & loads+=($!); done
    wait "${loads[@]}"
    for i in "${!cfgs[@]}"; do
      read -r name _ <<< "${cfgs[i]}"
      line "$r" "$name" $(($(schedstat "${pids[i]}") - c0[i])) "$(cat "$out.res$i")"
    done
    kill "${pids[@]}"; wait "${pids[@]}" 2> /dev/null || true; rm -rf "${runs[@]}"
  done
fi
[ "$mode" = together ] || for r in $(seq 1 "$rounds"); do
  for cfg in "$@"; do
    read -r name dist extra <<< "$cfg"
    if [ "$mode" = in-process ]; then
      us=$("$node" "$dist/bench/in-process.js" --load write --rounds "${WRITE_ROUNDS:-3000}" --history-records "$extra" | grep -oE '^in-process write: [0-9.]+' | grep -oE '[0-9.]+$')
      echo "$r $name $us" >> "$out"
    else
      run=$(mktemp -d)
      daemon "$dist" "$run" "$extra"
      pid=$!
      ready "$run"
      warm "$run"
      c0=$(schedstat $pid)
      res=$(count "$run")
      c1=$(schedstat $pid)
      kill $pid; wait $pid 2> /dev/null || true; rm -rf "$run"
      line "$r" "$name" $((c1 - c0)) "$res"
    fi
  done
done
python3 - "$out" << 'PY'
import collections, statistics, sys
rows = collections.defaultdict(list); per = collections.defaultdict(dict); names = []
for line in open(sys.argv[1]):
    r, n, *v = line.split()
    rows[n].append([float(x) for x in v]); per[r][n] = float(v[0])
    if n not in names: names.append(n)
for n in names:
    cols = list(zip(*rows[n]))
    med = ' '.join(f'{statistics.median(c):g}' for c in cols)
    print(f"{n:10s} median {med}   ({' '.join(str(x[0]) for x in rows[n])})")
for n in names[1:]:
    q = sorted(per[r][n] / per[r][names[0]] for r in per)
    print(f"{n}/{names[0]}: median of the rounds' ratios {statistics.median(q):.3f} (quartiles {q[len(q) // 4]:.3f}-{q[(3 * len(q)) // 4]:.3f})")
PY
