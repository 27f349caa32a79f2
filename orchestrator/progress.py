"""Progress of long work, told to whoever shows it: a command line's bars, a test, or nobody.

A `Progress` is called as work advances, `progress(task, done, total)`: `task` names what advances (an upload
to one proxy, the quotes to one holder, a checkpoint's pages of u or its epochs), `done` of its `total` units
are done so far, `done == total` when the task is finished. Library code takes one as an optional parameter
and draws nothing itself; orchestrator/commandline.py turns one into progress bars.
"""
from collections.abc import Callable

Progress = Callable[[str, int, int], None]
