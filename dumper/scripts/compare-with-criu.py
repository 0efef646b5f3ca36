#!/usr/bin/env python3
"""compare-with-criu.py OURS_DIR CRIU_DIR [--crit CRIT]

Decodes every image of two dumps of the same task (one by dumper, one by
`criu dump`) with crit and compares them field by field. Prints one line
per difference and a summary; exits 1 if a difference is not in the list
of known, explained ones (timings, run ids, clocks, and the values a live
task changes between the two dumps).

Typical use (the task keeps running between the two dumps):
    dumper -t $PID -D ours --leave-running
    criu dump -t $PID -D theirs --leave-running
    compare-with-criu.py ours theirs
"""
import json, os, re, subprocess, sys

# Paths (regexes over "image:path") whose values legitimately differ.
EXPECTED = [
    r"^stats-dump:.*_time$",                    # measured timings
    r"^inventory\.img:.*dump_criu_run_id$",      # random per run
    r"^timens-0\.img:",                          # clock readings at dump time
    r"^core-\d+\.img:.*\.tc\.timers\.",          # itimers count down
    r"^core-\d+\.img:.*fpregs\.",                # FPU state used by the task between dumps
    r"^core-\d+\.img:.*gpregs\.(r8|r9|r10|r11|r12|r13|r14|r15|ax|bx|cx|dx|si|di|bp|sp|ip|flags|orig_ax)$",
    r"^pages-\d+\.img",                          # contents change while the task runs
    r"^files\.img:.*\.size$",                     # log files grow
    r"^files\.img:.*\.pos$",
    # CRIU's is_stack() compares the wrong bits, so it marks the page under
    # a thread's sp lazy; dumper does not (see docs/dumper.md). That moves
    # where pagemap entries split, so pagemaps are compared as sets of dumped
    # pages instead (pages_of below), entry layout and flags aside.
    r"^pagemap-\d+\.img:",
    r"^stats-dump:.*page_pipe",
]


def pages_of(pagemap):
    """The set of page addresses a decoded pagemap image dumps."""
    pages = set()
    for e in pagemap["entries"][1:]:
        n = e.get("nr_pages", e.get("compat_nr_pages", 0))
        pages.update(e["vaddr"] + i * 4096 for i in range(n))
    return pages

def decode(crit, path):
    out = subprocess.run([crit, "decode", "-i", path], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)

def walk(a, b, path, diffs):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                diffs.append((f"{path}.{k}", "<missing>", b[k]))
            elif k not in b:
                diffs.append((f"{path}.{k}", a[k], "<missing>"))
            else:
                walk(a[k], b[k], f"{path}.{k}", diffs)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append((f"{path}.len", len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]", diffs)
    elif a != b:
        diffs.append((path, a, b))

def main():
    args = sys.argv[1:]
    crit = "crit"
    if "--crit" in args:
        i = args.index("--crit"); crit = args[i + 1]; del args[i:i + 2]
    ours, theirs = args
    names = sorted(set(os.listdir(ours)) | set(os.listdir(theirs)))
    unexpected = expected = 0
    for n in names:
        if n.endswith(".log") or n.startswith("pages-"):
            continue
        if n not in os.listdir(ours) or n not in os.listdir(theirs):
            print(f"MISSING {n}: ours={n in os.listdir(ours)} criu={n in os.listdir(theirs)}")
            unexpected += 1
            continue
        a, b = decode(crit, os.path.join(ours, n)), decode(crit, os.path.join(theirs, n))
        diffs = []
        walk(a, b, "", diffs)
        if n.startswith("pagemap-") and a and b:
            pa, pb = pages_of(a), pages_of(b)
            for what, extra in (("only dumper", pa - pb), ("only criu", pb - pa)):
                if extra:
                    print(f"DIFF  {n}: {len(extra)} pages dumped by {what}, first at {min(extra):#x}")
                    unexpected += 1
        for p, x, y in diffs:
            key = f"{n}:{p}"
            ok = any(re.search(e, key) for e in EXPECTED)
            expected += ok
            unexpected += not ok
            if not ok or os.environ.get("VERBOSE"):
                print(f"{'known' if ok else 'DIFF '} {key}: dumper={json.dumps(x)[:80]} criu={json.dumps(y)[:80]}")
    print(f"{unexpected} unexpected differences, {expected} known ones")
    sys.exit(1 if unexpected else 0)

main()
