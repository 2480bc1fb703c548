"""Entry point of the frozen application (PyInstaller): `skelex-desktop` as installed.

Two things a source checkout gets from the interpreter are done here: worker processes
(import, synthesis, pretraining pools) start through `multiprocessing.freeze_support`, and the
training child, started as `sys.executable -m skelex_desktop.core.training.train_worker ...`,
runs that module, since `sys.executable` is this program and not a Python interpreter.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys

CHILD_MODULES = ("skelex_desktop.",)  # what `-m` may run: the application's own modules


def run() -> int:
    multiprocessing.freeze_support()
    if len(sys.argv) > 2 and sys.argv[1] == "-m":
        module = sys.argv[2]
        if not module.startswith(CHILD_MODULES):
            print(f"skelex-desktop: -m runs the application's own modules, not {module!r}")
            return 2
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    from skelex_desktop.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
