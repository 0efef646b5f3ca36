#!/usr/bin/env bash
# Decode speed and peak memory of our crit beside CRIU's python crit, on the
# same generated images, in one run. Figures go to docs/benchmarks.md.
#
#   crit/benches/decode_bench.sh [PYTHON_CRIT]
#
# PYTHON_CRIT is a command running CRIU 4.2's python crit (default: `crit`
# from PATH if it is the python one). Without it only our figures print.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
pycrit=${1:-${PYTHON_CRIT:-}}
cargo build --release -q -p crit --bin crit --example gen_images
ours=$root/target/release/crit
gen=$root/target/release/examples/gen_images
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$gen" pagemap 200000 "$work/pagemap-200k.img"
"$gen" pagemap 2000000 "$work/pagemap-2m.img"
"$gen" mm 50000 "$work/mm-50k.img"

# prints "seconds peak_rss_kib" for a command: the fastest wall time of N
# runs (taken with nanosecond clocks around the command) and the largest
# peak RSS (/usr/bin/time). Our N is $RUNS (default 5), python's 2.
RUNS=${RUNS:-5}
measure() {
  local n=$1 out=$2; shift 2
  local best="" peak=0 t0 t1 t m
  for _ in $(seq "$n"); do
    rm -f "$out" # both tools write a new file each run
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; echo "fail fail"; return; }
    t1=$(date +%s%N)
    t=$(( (t1 - t0) / 1000 ))
    m=$(cat "$work/time")
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    [ "$m" -gt "$peak" ] && peak=$m
  done
  printf '%d.%03d %s\n' $((best / 1000000)) $(( (best / 1000) % 1000 )) "$peak"
}

printf '%-14s %-7s %10s %8s %13s %8s %13s %8s\n' image mode bytes ours_s ours_rss_kib py_s py_rss_kib speedup
for img in pagemap-200k mm-50k pagemap-2m; do
  size=$(stat -c %s "$work/$img.img")
  for mode in plain pretty; do
    flag=(); [ "$mode" = pretty ] && flag=(--pretty)
    read -r os orss < <(measure "$RUNS" "$work/out.json" "$ours" decode "${flag[@]}" -i "$work/$img.img" -o "$work/out.json")
    ps=-; prss=-; speed=-
    if [ -n "$pycrit" ] && [ "$img" != pagemap-2m ]; then
      read -r ps prss < <(measure 2 "$work/py.json" $pycrit decode "${flag[@]}" -i "$work/$img.img" -o "$work/py.json")
      cmp -s "$work/out.json" "$work/py.json" || echo "WARNING: outputs differ for $img $mode" >&2
      speed=$(python3 -c "print('%.0fx' % ($ps / max($os, 0.005)))")
    fi
    printf '%-14s %-7s %10s %8s %13s %8s %13s %8s\n' "$img" "$mode" "$size" "$os" "$orss" "$ps" "$prss" "$speed"
  done
done
# encode back, ours only (python needs the whole JSON in memory too)
read -r es erss < <(measure 1 "$work/back.img" "$ours" encode -i "$work/out.json" -o "$work/back.img")
printf '%-14s %-7s %10s %8s %13s\n' pagemap-2m encode "$(stat -c %s "$work/out.json")" "$es" "$erss"
cmp -s "$work/back.img" "$work/pagemap-2m.img" && echo "encode round trip of pagemap-2m: identical"
