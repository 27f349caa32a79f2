"""Fault injection for restart tests: SPLITLEDGER_FAILPOINT=<point>[:<n>] kills the hosting node with SIGKILL
the moment it reaches <point> (for group <n>, or anchor <n>, when given).

The points sit exactly between a durable record and the side effect that follows it, where a crash is the
hardest to recover from and an external kill lands only by luck:

  planned          the group's plan and backup point are in the database, nothing is on chain yet
  open-sent        openCheckpoint is mined, the database does not know the checkpoint id yet
  open             the open checkpoint is recorded; training has not started
  trained          the bill, history rows and trained model are recorded; nothing committed on chain
  bill-sent        commitBill is mined, the database still says 'trained'
  billed           the database says 'billed'; settleCheckpoint not sent
  settle-sent      settleCheckpoint is mined, the database still says 'billed'
  rollback-sent    rollbackCheckpoint is mined, the database still says 'trained'
  anchor-recorded  a history anchor is recorded in the database, its transaction not sent
  anchor-sent      anchorHistory is mined, the database has no block for it yet

The process kills itself with SIGKILL (not an exception, not exit()): no `finally`, no atexit, no flush, exactly
what `kill -9` or a power cut leaves behind. Unset (the default), a point costs one environment lookup.
"""
import os
import signal

ENV = "SPLITLEDGER_FAILPOINT"
POINTS = ("planned", "open-sent", "open", "trained", "bill-sent", "billed", "settle-sent", "rollback-sent",
          "anchor-recorded", "anchor-sent")


def failpoint(point: str, number: int | None = None) -> None:
    """Dies here if SPLITLEDGER_FAILPOINT names this point (and this group or anchor number, if it gives one)."""
    assert point in POINTS, point
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, which = wanted.partition(":")
    if name == point and (not which or int(which) == number):
        os.kill(os.getpid(), signal.SIGKILL)
