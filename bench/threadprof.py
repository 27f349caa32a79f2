"""A wall-clock sampling profiler of every thread of a process, for the benchmarks' --profile.

cProfile follows the thread that started it only, and the proxies answer in worker threads and the source
uploads from several: their time was invisible. This samples `sys._current_frames()` every --interval seconds
and counts, per thread, where each thread stood (its innermost frame: self time) and every function on its
stack (inclusive time). Waiting counts too (a thread blocked on a lock or a socket shows in the call that
blocks), which is what a wall-clock phase needs. It runs in the profiled process and takes the GIL to sample,
so a thread that holds the GIL in C for long is sampled when it lets go: figures are shares, not exact times.

Usage: python bench/threadprof.py -o OUT.txt [--interval 0.005] (-m module | script.py) [args ...]
OUT.txt: per thread (grouped by name, digits dropped), the top functions by inclusive and by self samples,
with the seconds they stand for (samples x interval), written at exit (also on SIGTERM).
"""
import argparse
import collections
import os
import re
import runpy
import signal
import sys
import threading
import time
from types import FrameType

Frame = tuple[str, int, str]


class Sampler:
    def __init__(self, out: str, interval: float):
        self.out, self.interval = out, interval
        self.inclusive: dict[str, collections.Counter[Frame]] = collections.defaultdict(collections.Counter)
        self.self_: dict[str, collections.Counter[Frame]] = collections.defaultdict(collections.Counter)
        self.samples: collections.Counter[str] = collections.Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="threadprof", daemon=True)
        self.written = False

    def loop(self) -> None:
        own = threading.get_ident()
        while not self.stop.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == own:
                    continue
                group = re.sub(r"\d+", "N", names.get(ident, "?"))
                self.samples[group] += 1
                seen = set()
                top = True
                f: FrameType | None = frame
                while f is not None:
                    code = f.f_code
                    key = (code.co_filename, code.co_firstlineno, code.co_name)
                    if top:
                        self.self_[group][key] += 1
                        top = False
                    if key not in seen:
                        seen.add(key)
                        self.inclusive[group][key] += 1
                    f = f.f_back

    def write(self) -> None:
        if self.written:
            return
        self.written = True
        self.stop.set()
        lines = [f"interval {self.interval} s; seconds = samples x interval"]
        for group, total in self.samples.most_common():
            lines.append(f"\n=== thread {group}: {total} samples ({total * self.interval:.1f} s)")
            for title, table in (("inclusive", self.inclusive[group]), ("self", self.self_[group])):
                lines.append(f"--- {title}")
                for (path, line, name), n in table.most_common(40):
                    short = "/".join(path.split("/")[-3:])
                    lines.append(f"{n * self.interval:8.2f} s {100 * n / total:5.1f}%  {name}  {short}:{line}")
        with open(self.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-o", required=True)
    parser.add_argument("--interval", type=float, default=0.005)
    parser.add_argument("-m", dest="module")
    args, rest = parser.parse_known_args()
    sampler = Sampler(args.o, args.interval)

    def on_term(signum, _frame):
        sampler.write()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_term)
    sampler.thread.start()
    started = time.perf_counter()
    try:
        if args.module:
            sys.argv = [args.module, *rest]
            # As `python -m` does: the working directory first, not this script's folder, so that a checkout's
            # own package is profiled rather than whichever copy is installed (an editable install elsewhere).
            sys.path[0] = os.getcwd()
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        else:
            sys.argv = rest
            sys.path.insert(0, os.path.dirname(os.path.abspath(rest[0])))
            runpy.run_path(rest[0], run_name="__main__")
    finally:
        sampler.samples["(process wall)"] = int((time.perf_counter() - started) / args.interval)
        sampler.write()


if __name__ == "__main__":
    main()
