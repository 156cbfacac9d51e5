#!/usr/bin/env python3
"""Draws several figures in one process.

    figures.py SCRIPT ARG... [--- SCRIPT ARG...]...

Each SCRIPT is plot.py, plot_boundary.py or plot_grid.py (beside this one),
run with its arguments exactly as if it ran alone. `binclass reproduce`
draws every figure of a reproduction this way: Python and matplotlib start
once (about 2 s) instead of once a figure, some thirty times. A figure that
fails stops the rest: its script's one-line message goes to stderr, as
when it runs alone, and its position (from 0) to stdout.
"""

import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import plot  # noqa: E402  (selects the Agg backend before pyplot loads)
import matplotlib.pyplot as plt  # noqa: E402

SCRIPTS = ("plot.py", "plot_boundary.py", "plot_grid.py")


def figures(argv: list[str]) -> list[list[str]]:
    jobs = [[]]
    for arg in argv:
        if arg == "---":
            jobs.append([])
        else:
            jobs[-1].append(arg)
    return [job for job in jobs if job]


def main() -> None:
    for i, (script, *args) in enumerate(figures(sys.argv[1:])):
        if script not in SCRIPTS:
            print(i, flush=True)
            sys.exit(f"figures: {script} is not one of {', '.join(SCRIPTS)}")
        module = plot if script == "plot.py" else importlib.import_module(script.removesuffix(".py"))
        sys.argv = [script, *args]
        try:
            module.main()
        except SystemExit as e:
            if e.code not in (None, 0):
                print(i, flush=True)
                raise
        finally:
            plt.close("all")


if __name__ == "__main__":
    main()
