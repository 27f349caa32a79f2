"""`python -m chaos` (`make chaos N=... SEED=...`): chaos runs of the market story, one per seed, each
checked; a failing seed is printed with the command that replays it. docs/reliability.md, "Chaos runs"."""
import argparse
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .checks import Violation, check_run, outcome_counts
from .story import PROJECT_ROOT, Run, RunRecord, StoryConfig, owner_files


@dataclass(frozen=True)
class Result:
    record: RunRecord
    violations: tuple[Violation, ...]
    outcomes: Counter

    @property
    def failed(self) -> bool:
        return bool(self.violations or self.record.problems)

    def summary(self) -> str:
        r = self.record
        kinds = Counter(f.kind for f in r.faults)
        restarts = sum(1 for code in r.host_exits if code != 0)
        verdict = "FAILED" if self.failed else "ok"
        return (f"seed {r.seed}: {verdict} in {r.seconds:.0f}s; faults {dict(kinds)}; host runs "
                f"{len(r.host_exits)} ({restarts} killed or failed); checkpoints {self.outcomes['settled']} settled, "
                f"{self.outcomes['rolled back']} rolled back, {self.outcomes['open']} open; "
                f"{self.outcomes['claims']} claims, {self.outcomes['anchors']} anchors; "
                f"{', '.join(f'{k} {v:.0f}s' for k, v in r.phases.items())}")


def replay(seed: int) -> str:
    return f"make chaos SEED={seed} N=1   (or: python -m chaos --seed {seed} --runs 1)"


def run_seed(seed: int, folder: Path, files: Path, config: StoryConfig, log=print) -> Result:
    run = Run(seed, folder, files, config, log=log)
    try:
        record, world = run.play()
        if world is None:
            return Result(record, (), Counter())
        violations = check_run(world.rpc, world.deployment_file, world.model_id, world.stores[0],
                               list(world.stores), world.bills_dir, story_ended=record.finished)
        return Result(record, tuple(violations), outcome_counts(world.rpc, world.deployment_file, world.model_id))
    finally:
        run.stop_chain()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="the first seed (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=1, help="how many seeds, from --seed on (default: %(default)s)")
    parser.add_argument("--folder", type=Path, default=PROJECT_ROOT / "var" / "chaos",
                        help="where each run's processes keep their stores and logs (default: %(default)s)")
    parser.add_argument("--faults", type=int, default=StoryConfig.faults, help="faults per run (default: %(default)s)")
    parser.add_argument("--window", type=float, default=StoryConfig.window,
                        help="seconds of faults per run (default: %(default)s)")
    parser.add_argument("--max-lag", type=float, default=StoryConfig.max_lag,
                        help="the deepest chain rewind in seconds (default: %(default)s, within the hosting node's "
                             "confirmation depth; more explores reorgs deeper than the node repairs)")
    args = parser.parse_args(argv)
    # A stopped driver stops what it started (each process runs in a session of its own, out of reach of a
    # signal to the driver's group): SIGTERM unwinds through the runs' cleanup like an exception.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    files = owner_files(args.folder / "files")
    config = StoryConfig(window=args.window, faults=args.faults, max_lag=args.max_lag)
    results = []
    for seed in range(args.seed, args.seed + args.runs):
        result = run_seed(seed, args.folder / f"seed-{seed}", files, config)
        results.append(result)
        print(result.summary(), flush=True)
        for line in result.record.events:
            print(f"    {line}")
        if result.failed:
            for problem in result.record.problems:
                print(f"  problem: {problem}")
            for violation in result.violations:
                print(f"  violation: {violation}")
            print(f"  replay: {replay(seed)}; the run's stores and logs: {result.record.folder}", flush=True)
    failed = [r.record.seed for r in results if r.failed]
    faults = Counter(f.kind for r in results for f in r.record.faults)
    print(f"\n{len(results)} runs, {sum(faults.values())} faults ({dict(faults)}), "
          f"{sum(len(r.record.host_exits) for r in results)} hosting node runs; "
          f"{len(failed)} failed{': seeds ' + ', '.join(map(str, failed)) if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
