"""Asking every holder at once for a paged job (listings, quotes), recording the answers on the caller's thread.

The node used to ask its holders one after another, page after page, waiting for each answer before the next
request: with three proxies the listing and the quote took the sum of the three proxies' times plus the node's
own recording in between (docs/benchmarks.md, "End to end"). Here each holder is asked by a thread of its own,
page after page, and the caller receives (holder, page) in turns: the first holder's next page, then the
second's, and so on over the holders still answering (in the order of `jobs`), whatever order they arrive in.
Its state writes stay on its own thread (the state database is the caller's), and their order does not hang on
which proxy answered first: the listings' order is what a group's rows are planned and trained in, and a run
must not buy or train other rows because one proxy was slower this time. At most AHEAD answered pages wait per
holder while the caller records, so memory stays bounded however many pages a holder has.

A holder's job that raises ends that holder's pages: the caller receives (holder, Failed(error)) after its
last good page and decides (a proxy that is down is logged and skipped, anything else is raised). If the caller
stops early (it raised), the threads stop at their next page.
"""
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

AHEAD = 2  # answered pages that may wait per holder while the caller records them


@dataclass(frozen=True)
class Failed:
    """A holder's job raised `error`; no page of that holder follows."""
    error: BaseException


@dataclass(frozen=True)
class _Done:
    pass


@dataclass(frozen=True)
class Page(Generic[T]):
    holder: str
    item: "T | Failed"


def each_holder(jobs: Mapping[str, Callable[[], Iterator[T]]], *, ahead: int = AHEAD) -> Iterator[Page[T]]:
    """Runs every holder's job (a generator of its pages) on its own thread; yields the pages in turns over the
    holders (in the order of `jobs`), each holder's in their order, then (holder, Failed) for a job that raised.
    Returns when every job ended."""
    if ahead < 1:
        raise ValueError(f"at least one page may wait per holder, not {ahead}")
    waiting: dict[str, queue.Queue[T | Failed | _Done]] = {name: queue.Queue(maxsize=ahead) for name in jobs}
    stop = threading.Event()

    def put(name: str, item: "T | Failed | _Done") -> bool:
        while not stop.is_set():
            try:
                waiting[name].put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def run(name: str, job: Callable[[], Iterator[T]]) -> None:
        try:
            for item in job():
                if not put(name, item):
                    return
        except BaseException as e:  # handed to the caller, which decides
            put(name, Failed(e))
        put(name, _Done())

    running = list(jobs)
    with ThreadPoolExecutor(max_workers=max(1, len(running)), thread_name_prefix="holder") as pool:
        for name, job in jobs.items():
            pool.submit(run, name, job)
        try:
            while running:
                for name in list(running):
                    item = waiting[name].get()
                    if isinstance(item, _Done):
                        running.remove(name)
                    else:
                        yield Page(name, item)
        finally:
            stop.set()
