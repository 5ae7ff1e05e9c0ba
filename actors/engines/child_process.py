"""Run a Python module as a child that dies with its parent, even a parent killed with -9.

``python -m actors.engines.child_process MODULE ARGS...`` runs ``MODULE`` as ``__main__``
with a watcher thread on its stdin, a pipe whose other end only the parent holds. When the
parent exits in any way the kernel closes that end; the read returns and the child exits
at once. (``PR_SET_PDEATHSIG`` would fire when the *thread* that started the child exits,
and the gateway starts engines from a thread pool.)
"""

from __future__ import annotations

import os
import runpy
import sys
import threading


def _exit_with_parent() -> None:
    while sys.stdin.buffer.read(4096):
        pass  # the parent never writes; end of file means it is gone
    os._exit(0)


def main() -> None:
    module, sys.argv = sys.argv[1], sys.argv[1:]
    threading.Thread(target=_exit_with_parent, name="exit-with-parent", daemon=True).start()
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
