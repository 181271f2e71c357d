"""Per case group (e.g. 12.1) counts of a kosoku report directory: passed / run.

    python3 autobahn/summary.py REPORT_DIR [--server-failures-fail]

With --server-failures-fail it exits 1 when any case failed other than by a runner
exception (or when no case ran at all), so that a group the runner cannot finish still
proves every case it did finish.

A case passes when its behavior is OK, NON-STRICT or INFORMATIONAL, as Autobahn
counts it. A case that ended in an exception of the runner's own case code leaves no
HTTP exchange in its report: those are told apart from the server's failures.
"""

import collections
import glob
import json
import os
import sys

PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
groups = collections.defaultdict(lambda: [0, 0])
server_failures = 0
reasons = collections.defaultdict(collections.Counter)
for path in glob.glob(os.path.join(sys.argv[1], "*_case_*.json")):
    with open(path) as f:
        case = json.load(f)
    case_id = case.get("id")
    if not case_id:
        continue
    group = ".".join(case_id.split(".")[:2])
    groups[group][1] += 1
    if case.get("behavior") in PASSING:
        groups[group][0] += 1
    else:
        if not case.get("httpRequest"):
            why = f"runner exception, no HTTP exchange recorded: {case.get('result')}"
        else:
            why = f"{case.get('behavior')}, close {case.get('remoteCloseCode')}"
            server_failures += 1
        reasons[group][why] += 1


def key(group):
    return tuple(int(part) for part in group.split(".") if part.isdigit())


for group in sorted(groups, key=key):
    passed, run = groups[group]
    why = "; ".join(f"{n}x {r}" for r, n in reasons[group].most_common(2))
    print(f"  {group}: {passed}/{run} passed" + (f" ({why})" if why else ""))

if "--server-failures-fail" in sys.argv[2:]:
    total_passed = sum(passed for passed, _ in groups.values())
    total_run = sum(run for _, run in groups.values())
    print(f"  in all: {total_passed}/{total_run} passed, {server_failures} failed by the server")
    if server_failures or total_run == 0:
        sys.exit(1)
