#!/bin/sh
# bench.sh DUMPER CRIU PROG [RUNS]
#
# Dumps the same running program RUNS times (default 5) with dumper and with
# `criu dump`, both with --leave-running, and prints the wall time of each
# run and the median, plus the frozen time each tool recorded in stats-dump.
# PROG is started like the CRIU fixtures' targets (PROG PIDFILE STATUSFILE).
# Needs root. Example:
#   dumper/scripts/bench.sh target/release/dumper /tmp/criu-build/bin/criu \
#       /tmp/criu-build/progs/bigmem 5
set -eu
DUMPER=$1 CRIU=$2 PROG=$3 RUNS=${4:-5}
CRIT=${CRIT:-$(dirname "$DUMPER")/crit}
W=$(mktemp -d)
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/run"
python3 - "$W/run" "$PROG" <<'PY' >"$W/pid"
import os, subprocess, sys, time
run, prog = sys.argv[1], sys.argv[2]
p = subprocess.Popen(["setsid", prog, run + "/pid", run + "/status"], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True, cwd=run)
while not os.path.exists(run + "/pid"): time.sleep(0.01)
time.sleep(1)
print(open(run + "/pid").read().strip())
PY
PID=$(cat "$W/pid")
now() { date +%s%N; }
# The tools take turns, and dirty pages are flushed before every run, so
# neither pays for the other's writeback.
for tool in dumper criu; do : >"$W/$tool.times" >"$W/$tool.frozen"; done
i=0
while [ $i -lt "$RUNS" ]; do
    for tool in dumper criu; do
        d="$W/$tool-$i"; mkdir -p "$d"
        sync
        t0=$(now)
        if [ $tool = dumper ]; then "$DUMPER" -t "$PID" -D "$d" --leave-running
        else "$CRIU" dump -t "$PID" -D "$d" --leave-running -o dump.log; fi
        t1=$(now)
        frozen=$("$CRIT" decode -i "$d/stats-dump" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["dump"]["frozen_time"])')
        pages=$(du -k "$d"/pages-*.img | awk '{s+=$1} END {print s}')
        echo "$tool run $i: $(( (t1 - t0) / 1000000 )) ms wall, frozen ${frozen} us, pages ${pages} KiB"
        echo $(( (t1 - t0) / 1000000 )) >>"$W/$tool.times"
        echo $(( frozen / 1000 )) >>"$W/$tool.frozen"
        rm -rf "$d"
    done
    i=$((i + 1))
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for tool in dumper criu; do
    echo "$tool median: $(median "$W/$tool.times") ms wall, $(median "$W/$tool.frozen") ms frozen"
done
