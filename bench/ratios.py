#!/usr/bin/env python3
"""Prints strata/docker ratios of median wall times from hyperfine JSON.

usage: ratios.py RESULTS_DIR CASE:MODE...
"""
import json
import os
import statistics
import sys


def median(path):
    with open(path) as f:
        times = json.load(f)["results"][0]["times"]
    return statistics.median(times)


def main():
    results, cells = sys.argv[1], sys.argv[2:]
    print(f"{'case':<18}{'mode':<6}{'strata s':>10}{'docker s':>10}{'ratio':>8}")
    for cell in cells:
        case, mode = cell.split(":")
        paths = [os.path.join(results, f"{tool}.{case}.{mode}.json") for tool in ("strata", "docker")]
        if not all(os.path.exists(p) for p in paths):
            print(f"{case:<18}{mode:<6}{'missing':>10}")
            continue
        s, d = (median(p) for p in paths)
        print(f"{case:<18}{mode:<6}{s:>10.3f}{d:>10.3f}{s / d:>8.2f}")


if __name__ == "__main__":
    main()
