"""Where a process's Python memory goes, by phase, for the benchmarks' --trace-memory.

tracemalloc sees what Python and numpy allocate (numpy reports its array buffers to it), not SQLite's page
cache or XLA's buffers: RSS above the traced peak is those. Two views are written:
  <prefix>-phases.txt  per phase, in the order entered: the traced peak during it (tracemalloc's peak since
                       the phase began) and what was still held when it ended, with the top sites then;
  <prefix>-peak.txt    the top sites at the highest traced total seen: a watcher thread takes a snapshot each
                       time the total has grown 5 % past the last one, so the last snapshot is within 5 % of
                       the peak (the sites are summarised at once; the snapshot itself is not kept).
Sites are grouped by traceback (`frames` frames deep, the innermost first), sizes in MB (10^6 bytes).
Each phase also gets the highest RSS the watcher saw during it (VmRSS every 0.25 s: what is not traced shows
there). With frames 0 nothing is traced: the phases' RSS only, at almost no cost to the run.
"""
from __future__ import annotations

import threading
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

MB = 1e6
GROWTH = 1.05  # a new peak snapshot once the traced total is this much above the last one
WATCH_EVERY = 0.25  # seconds between the watcher's looks at the traced total


@dataclass(frozen=True)
class Site:
    size: int  # bytes held
    count: int  # blocks
    frames: tuple[str, ...]  # "file:line" innermost first


@dataclass(frozen=True)
class PhaseMemory:
    name: str
    peak: int  # traced bytes at the phase's highest
    held: int  # traced bytes when it ended
    sites: tuple[Site, ...]
    rss: int  # the highest RSS seen during it


def rss_now() -> int:
    """This process's resident set (VmRSS), in bytes; 0 where /proc is not there."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def top_sites(snapshot: tracemalloc.Snapshot, top: int) -> tuple[Site, ...]:
    return tuple(Site(s.size, s.count, tuple(f"{f.filename}:{f.lineno}" for f in s.traceback))
                 for s in snapshot.statistics("traceback")[:top])


def format_sites(sites: tuple[Site, ...]) -> list[str]:
    lines = []
    for site in sites:
        lines.append(f"  {site.size / MB:9.1f} MB {site.count:>10,} blocks  {site.frames[0] if site.frames else '?'}")
        lines.extend(f"{'':38}{frame}" for frame in site.frames[1:])
    return lines


class MemoryTrace:
    """tracemalloc over the process from start() on; `phase(name)` when a phase begins; `close()` writes."""

    def __init__(self, prefix: Path, frames: int, top: int = 25):
        self.prefix, self.frames, self.top = prefix, frames, top
        self.phases: list[PhaseMemory] = []
        self._current: str | None = None
        self._rss = 0  # the highest RSS seen in the current phase
        self._lock = threading.Lock()
        self._high = 0
        self._at_high: tuple[str | None, int, tuple[Site, ...]] = (None, 0, ())
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="memtrace", daemon=True)

    @property
    def tracing(self) -> bool:
        return self.frames > 0

    def start(self) -> None:
        if self.tracing:
            tracemalloc.start(self.frames)
        self._watcher.start()

    def phase(self, name: str) -> None:
        """Phase `name` begins: the one before it is summarised."""
        with self._lock:
            self._end_phase()
            self._current = name
            self._rss = rss_now()
            if self.tracing:
                tracemalloc.reset_peak()

    def close(self) -> None:
        self._stop.set()
        self._watcher.join()
        with self._lock:
            self._end_phase()
            self._current = None
        if self.tracing:
            tracemalloc.stop()
        self._write()

    def _end_phase(self) -> None:
        if self._current is None:
            return
        rss = max(self._rss, rss_now())
        if not self.tracing:
            self.phases.append(PhaseMemory(self._current, 0, 0, (), rss))
            return
        held, peak = tracemalloc.get_traced_memory()
        self.phases.append(PhaseMemory(self._current, peak, held, top_sites(tracemalloc.take_snapshot(), self.top),
                                       rss))
        self._note_high(held)

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            self._rss = max(self._rss, rss_now())
            if not self.tracing:
                continue
            held, _peak = tracemalloc.get_traced_memory()
            if held > self._high * GROWTH:
                with self._lock:
                    self._note_high(tracemalloc.get_traced_memory()[0])

    def _note_high(self, held: int) -> None:
        if held > self._high:
            self._high = held
            self._at_high = (self._current, held, top_sites(tracemalloc.take_snapshot(), self.top))

    def _write(self) -> None:
        lines = [f"traced memory by phase ({self.frames} frames a site, MB); written {time.strftime('%H:%M:%S')}"]
        for p in self.phases:
            lines += [f"\n== {p.name}: RSS up to {p.rss / MB:.0f} MB; traced: peak {p.peak / MB:.1f} MB during it, "
                      f"{p.held / MB:.1f} MB held at its end"]
            lines += format_sites(p.sites)
        Path(f"{self.prefix}-phases.txt").write_text("\n".join(lines) + "\n")
        if not self.tracing:
            return
        phase, held, sites = self._at_high
        header = f"top sites at the highest traced total seen: {held / MB:.1f} MB, in phase {phase}"
        Path(f"{self.prefix}-peak.txt").write_text("\n".join([header, *format_sites(sites)]) + "\n")
