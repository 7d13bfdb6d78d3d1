#!/usr/bin/env python3
"""The exact solver the planner benchmark compares its placement with (tests/benches/planner.rs).

Reads a JSON list of fleets on stdin; each is
  {"nodes": [{"eligible": bool, "memory": free MB, "disk": free MB, "cpu": free millicores,
              "ports": free ports, "empty": bool (no instance yet)}, ...],
   "workloads": [{"memory": MB, "disk": MB, "cpu": millicores, "ports": count}, ...]}
and writes a JSON list of {"objective": int, "placed": int, "opened": int} on the last line
of stdout (HiGHS prints its banner first): the
optimum of the MILP

  x[w][n] in {0,1}   workload w on node n (0 when n is not eligible)
  y[n]    in {0,1}   node n was empty and receives a workload
  sum_n x[w][n] <= 1                       each workload at most once
  sum_w need_r[w] x[w][n] <= free_r[n]     for memory, disk, cpu and ports, every node
  x[w][n] <= y[n]                          for empty nodes
  minimise 1000 * (W - sum x) + sum y      unplaced workloads first, then nodes opened

the same objective the benchmark scores the planner's first-fit-decreasing best fit
with. Solved with HiGHS (PyPI highspy).
"""

import json
import sys

import highspy

UNPLACED = 1000


def solve(fleet):
    nodes, work = fleet["nodes"], fleet["workloads"]
    h = highspy.Highs()
    h.silent()
    h.setOptionValue("mip_rel_gap", 0.0)
    x = {}
    for w in range(len(work)):
        for n, node in enumerate(nodes):
            if node["eligible"]:
                x[w, n] = h.addBinary()
    y = {n: h.addBinary() for n, node in enumerate(nodes) if node["eligible"] and node["empty"]}
    for w in range(len(work)):
        on = [x[w, n] for n in range(len(nodes)) if (w, n) in x]
        if on:
            h.addConstr(sum(on) <= 1)
    for n, node in enumerate(nodes):
        if not node["eligible"]:
            continue
        for key in ("memory", "disk", "cpu", "ports"):
            h.addConstr(sum(work[w][key] * x[w, n] for w in range(len(work))) <= node[key])
        if n in y:
            for w in range(len(work)):
                h.addConstr(x[w, n] <= y[n])
    placed = sum(x.values()) if x else 0
    opened = sum(y.values()) if y else 0
    h.minimize(UNPLACED * (len(work) - placed) + opened if x else UNPLACED * len(work))
    objective = round(h.getObjectiveValue()) if x else UNPLACED * len(work)
    solution = h.getSolution().col_value if x else []
    return {
        "objective": objective,
        "placed": sum(round(solution[v.index]) for v in x.values()) if x else 0,
        "opened": sum(round(solution[v.index]) for v in y.values()) if y else 0,
    }


def main():
    fleets = json.load(sys.stdin)
    results = [solve(f) for f in fleets]
    sys.stdout.write("\n" + json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
