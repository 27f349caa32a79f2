"""A seeded schedule of faults: what happens to whom, when, for how long. Pure: the same seed gives the same
schedule on any machine, so a failing run is replayed from its seed alone.

Kinds (the driver, chaos/story.py, carries them out):

  kill-proxy      SIGKILL proxy `target`, start it again on the same port and store after `duration`
  kill-host       SIGKILL the hosting node; the driver starts the same command on the same state file again
  chain-restart   stop the chain (SIGTERM: anvil writes its state, --dump-state), start it again from that
                  file (--load-state) after `duration`: same port, chain id, blocks, logs; nothing lost
  chain-rewind    SIGKILL the chain and start it from the state it had `lag` seconds earlier (anvil_dumpState
                  then): every transaction of those seconds is gone, as in a reorg of that depth. By default the
                  lag stays below the hosting node's confirmation depth in time (MAX_LAG), so the reorg takes only
                  transactions the node has not yet counted as done; `max_lag` above it explores deeper ones
  cut             the relay in front of `target` (a proxy's index, or "rpc") closes every connection, and
                  refuses new ones for `duration`
  delay           the relay adds `amount` ms to every chunk for `duration`
  truncate        the relay closes each connection after `amount` bytes of answers, for `duration`
"""
import random
from dataclasses import dataclass

PROXIES = 3
RPC = "rpc"
KINDS = ("kill-proxy", "kill-host", "chain-restart", "chain-rewind", "cut", "delay", "truncate")
# How often each kind is drawn, relative to the others: process kills and relay faults are cheap, a chain
# restart stops every party for a while.
WEIGHTS = (3, 3, 1, 1, 2, 2, 2)
# The chain mines a block every BLOCK_TIME seconds and the hosting node counts a transaction as done DEPTH blocks
# later (--confirmations): whatever it has recorded is at least DEPTH x BLOCK_TIME seconds old.
BLOCK_TIME = 0.1
DEPTH = 3
MAX_LAG = 0.25  # < DEPTH x BLOCK_TIME, with room for the driver's own delay in carrying the rewind out


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the story's fault window opens
    kind: str
    target: str | None = None  # a proxy's index as text, "rpc", or None (the host, the chain)
    duration: float = 0.0  # seconds until the target is back or the relay fault is cleared
    amount: int = 0  # delay: ms; truncate: bytes
    lag: float = 0.0  # chain-rewind: how far back the state it restarts from was taken

    @property
    def targeted(self) -> str:
        """The target of a fault that has one (a proxy or a relay)."""
        if self.target is None:
            raise ValueError(f"a {self.kind} fault names no target")
        return self.target

    def describe(self) -> str:
        parts = [f"{self.at:6.2f}s {self.kind}"]
        if self.target is not None:
            parts.append(f"{'proxy-' + self.target if self.target != RPC else RPC}")
        if self.duration:
            parts.append(f"for {self.duration:.2f}s")
        if self.amount:
            parts.append(f"{self.amount}{'ms' if self.kind == 'delay' else ' bytes'}")
        if self.lag:
            parts.append(f"losing the last {self.lag:.2f}s")
        return " ".join(parts)


def schedule(seed: int, window: float, faults: int, max_lag: float = MAX_LAG) -> tuple[Fault, ...]:
    """`faults` faults at random moments of a `window`-second window, in time order."""
    rng = random.Random(seed)
    drawn = [_fault(rng, rng.uniform(0.0, window), max_lag) for _ in range(faults)]
    return tuple(sorted(drawn, key=lambda f: f.at))


def _fault(rng: random.Random, at: float, max_lag: float) -> Fault:
    kind = rng.choices(KINDS, WEIGHTS)[0]
    if kind == "kill-proxy":
        return Fault(at, kind, str(rng.randrange(PROXIES)), duration=rng.uniform(0.0, 3.0))
    if kind == "kill-host":
        return Fault(at, kind, duration=rng.uniform(0.0, 2.0))
    if kind == "chain-restart":
        return Fault(at, kind, duration=rng.uniform(0.0, 2.0))
    if kind == "chain-rewind":
        return Fault(at, kind, duration=rng.uniform(0.0, 1.0), lag=rng.uniform(0.05, max_lag))
    target = rng.choice([*map(str, range(PROXIES)), RPC])
    duration = rng.uniform(0.2, 3.0)
    if kind == "delay":
        return Fault(at, kind, target, duration, amount=rng.randrange(10, 400))
    if kind == "truncate":
        return Fault(at, kind, target, duration, amount=rng.randrange(0, 2_000))
    return Fault(at, kind, target, duration)
