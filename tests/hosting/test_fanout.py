"""each_holder (orchestrator/hosting/fanout.py): every holder asked at once, pages handed to the caller in turns
over the holders and in each holder's order, a failure handed over after that holder's good pages."""
import threading
import time

import pytest

from orchestrator.hosting.fanout import Failed, each_holder


def pages_of(*items):
    def job():
        yield from items
    return job


def test_every_holders_pages_arrive_in_that_holders_order():
    got: dict[str, list] = {}
    for page in each_holder({"a": pages_of(1, 2, 3), "b": pages_of("x", "y")}):
        got.setdefault(page.holder, []).append(page.item)
    assert got == {"a": [1, 2, 3], "b": ["x", "y"]}



def test_pages_are_handed_over_in_turns_over_the_holders_whichever_answers_first():
    # The caller records listings in this order, and a group's rows are planned in it: a slow first holder
    # must not change which rows a run buys and trains on.
    def slow(*items):
        def job():
            for item in items:
                time.sleep(0.05)
                yield item
        return job

    got = [(page.holder, page.item) for page in each_holder({"slow": slow(1, 2, 3), "fast": pages_of("x", "y")})]
    assert got == [("slow", 1), ("fast", "x"), ("slow", 2), ("fast", "y"), ("slow", 3)]

def test_holders_are_asked_at_once():
    # Each job waits until the other has started: run one after the other, neither would ever start the other.
    started = threading.Barrier(2, timeout=5)

    def job():
        started.wait()
        yield "page"

    got = [page.item for page in each_holder({"a": job, "b": job})]
    assert got == ["page", "page"]


def test_a_failing_holder_ends_with_its_error_after_its_good_pages():
    def failing():
        yield 1
        raise ConnectionError("down")

    got = [(page.holder, page.item) for page in each_holder({"a": failing, "b": pages_of(7)})]
    mine = [item for holder, item in got if holder == "a"]
    assert mine[0] == 1 and isinstance(mine[1], Failed) and str(mine[1].error) == "down" and len(mine) == 2
    assert [item for holder, item in got if holder == "b"] == [7]


def test_a_holder_runs_at_most_ahead_pages_in_front_of_the_caller():
    produced = []

    def job():
        for k in range(10):
            produced.append(k)
            yield k

    pages = each_holder({"a": job}, ahead=2)
    assert next(pages).item == 0
    time.sleep(0.3)  # time enough for an unbounded producer to run to the end
    # One taken, two waiting, one produced and blocked on the full queue.
    assert len(produced) <= 4
    assert [page.item for page in pages] == list(range(1, 10))


def test_a_caller_that_stops_early_stops_the_holders():
    produced = []

    def endless():
        k = 0
        while True:
            produced.append(k)
            yield k
            k += 1

    for page in each_holder({"a": endless}, ahead=1):
        if page.item == 3:
            break
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count


def test_ahead_below_one_is_refused():
    with pytest.raises(ValueError, match="at least one page"):
        list(each_holder({"a": pages_of(1)}, ahead=0))
