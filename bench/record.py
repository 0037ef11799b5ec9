#!/usr/bin/env python3
"""Keep the latest run of each benchmark in bench/results.md, newest first.

    python3 bench/record.py bench/results.md KEY "TEXT"

KEY names the run (a config file for bench/run.sh, "bench/tls.sh"); TEXT replaces that
key's section. Sections are marked with an HTML comment, so the headings inside a table
(the harness writes its own "## ...") never split them.
"""
import re
import sys

TITLE = (
    "# Benchmark results\n\n"
    "The latest run of each benchmark per configuration: `bench/run.sh` (workloads a-g "
    "against nginx, lighttpd and h2o) and `bench/tls.sh` (HTTPS and HTTP/2 against nginx "
    "and h2o). Quote ratios, not absolute figures: the machine is shared and noisy."
)


def main():
    path, key, new = sys.argv[1:]
    try:
        text = open(path).read()
    except FileNotFoundError:
        text = ""
    parts = re.split(r"(?m)^(<!-- run: .*? -->)\n", text)
    mark = f"<!-- run: {key} -->"
    sections = [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]
    kept = "".join(f"{m}\n{b.strip()}\n\n" for m, b in sections if m != mark)
    out = f"{TITLE}\n\n{mark}\n{new.strip()}\n\n{kept}"
    open(path, "w").write(out.rstrip() + "\n")


main()
