#!/usr/bin/env bash
# Time and peak memory of `crit diff` on two dumps of a process with 1 GiB of
# memory, 5 pages of which changed between the two. Figures go to the
# "crit diff" section of docs/benchmarks.md.
#
#   crit/benches/diff_bench.sh [WORKDIR]
#
# Writes about 2 GiB of pages into WORKDIR (default: a temporary directory,
# removed at the end). Two layouts of the same memory:
#   coarse: 256 mappings of 4 MiB, one pagemap entry each (and an mm image
#           with those 256 VMAs, one of them with a changed protection);
#   fine:   174,763 pagemap entries of 1 or 2 pages (gen_images pagemap),
#           the worst case for the walk over the entries.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p crit --bin crit --example gen_images
crit=$target/release/crit
gen=$target/release/examples/gen_images
if [ $# -ge 1 ]; then
  work=$1
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
pages=262144 # 1 GiB of 4 KiB pages

# the same 1 GiB of pages for both layouts: random 1 MiB blocks, and a copy
# with 5 pages changed (two of them next to each other); kept from an earlier
# run in the same WORKDIR
[ "$(stat -c %s "$work/pages/b" 2>/dev/null)" = $((pages * 4096)) ] ||
python3 - "$work" "$pages" <<'EOF'
import os, sys
work, pages = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{work}/pages", exist_ok=True)
with open(f"{work}/pages/a", "wb") as f:
    block = os.urandom(1 << 20)
    for i in range(pages // 256):
        f.write(block[i % 4096:] + block[:i % 4096])
os.system(f"cp '{work}/pages/a' '{work}/pages/b'")
with open(f"{work}/pages/b", "r+b") as f:
    for page in (7, 1000, 1001, 131072, pages - 1):
        f.seek(page * 4096 + 123)
        f.write(b"changed")
EOF

# coarse: 256 entries of 1024 pages, 4 MiB apart plus a 1-page hole
python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
base, step, n = 0x7f0000000000, 1024 * 4096 + 4096, 256
pm = [{"pages_id": 1}] + [
    {"vaddr": base + i * step, "compat_nr_pages": 0, "flags": 4, "nr_pages": 1024} for i in range(n)
]
json.dump({"magic": "PAGEMAP", "entries": pm}, open(f"{work}/coarse-pagemap.json", "w"))
for side in "ab":
    vmas = [
        {"start": base + i * step, "end": base + i * step + 1024 * 4096, "pgoff": 0, "shmid": 0,
         "prot": 7 if (side == "b" and i == 100) else 3, "flags": 0x22, "status": 0x201, "fd": -1}
        for i in range(n)
    ]
    mm = {"mm_start_code": 0, "mm_end_code": 0, "mm_start_data": 0, "mm_end_data": 0,
          "mm_start_stack": 0, "mm_start_brk": 0, "mm_brk": 0, "mm_arg_start": 0, "mm_arg_end": 0,
          "mm_env_start": 0, "mm_env_end": 0, "exe_file_id": 1, "vmas": vmas}
    json.dump({"magic": "MM", "entries": [mm]}, open(f"{work}/coarse-mm-{side}.json", "w"))
EOF

for layout in coarse fine; do
  for side in a b; do
    d=$work/$layout/$side
    mkdir -p "$d"
    ln -f "$work/pages/$side" "$d/pages-1.img"
    if [ $layout = coarse ]; then
      "$crit" encode -i "$work/coarse-pagemap.json" -o "$d/pagemap-1.img"
      "$crit" encode -i "$work/coarse-mm-$side.json" -o "$d/mm-1.img"
    else
      "$gen" pagemap 174763 "$d/pagemap-1.img"
    fi
  done
done

# prints "seconds peak_rss_kib exit_status" for one command, output to $work/out
measure() {
  local rc=0
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || rc=$?
  echo "$(cat "$work/time" | tail -1) $rc"
}

# drops the pages files from the page cache (posix_fadvise DONTNEED needs no root)
uncache() {
  python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' \
    "$work/pages/a" "$work/pages/b"
}

row() { printf '%-8s %-28s %8s %12s %6s %6s\n' "$@"; }
row layout command seconds peak_rss_kib status lines
uncache
read -r s _ _ < <(measure sh -c "cat '$work/pages/a' '$work/pages/b' >/dev/null")
row - "cat both pages files, cold" "$s" - - -
read -r s _ _ < <(measure sh -c "cat '$work/pages/a' '$work/pages/b' >/dev/null")
row - "cat both pages files, warm" "$s" - - -
for layout in coarse fine; do
  uncache
  read -r s rss rc < <(measure "$crit" diff "$work/$layout/a" "$work/$layout/b")
  row $layout "crit diff, cold cache" "$s" "$rss" "$rc" "$(wc -l <"$work/out")"
  read -r s rss rc < <(measure "$crit" diff "$work/$layout/a" "$work/$layout/b")
  row $layout "crit diff, warm cache" "$s" "$rss" "$rc" "$(wc -l <"$work/out")"
  read -r s rss rc < <(measure "$crit" diff --json "$work/$layout/a" "$work/$layout/b")
  row $layout "crit diff --json, warm" "$s" "$rss" "$rc" "$(wc -l <"$work/out")"
done
echo
echo "output of the last text run (coarse):"
"$crit" diff "$work/coarse/a" "$work/coarse/b" || true
