"""An upload crosses in pages, each its own idempotent upload: a proxy killed part-way loses no stored page,
and the same upload run again with its upload key stores the rest, and none of the stored pages twice."""
import signal

import psutil
import pytest
from proxy_builders import PRICE, SOURCE_A_KEY, source_mapping, source_rows

from orchestrator.errors import ProxyUnavailable
from orchestrator.proxy.server import proxy_process
from orchestrator.source.upload import hand_rows, page_key, pages

UPLOAD_KEY = b"\x5a" * 32
ROWS = 300
PAGE = 50


def killed(db: str) -> None:
    """SIGKILLs the proxy process serving `db` (no shutdown, no flush) and waits for it to be gone."""
    for process in psutil.Process().children():
        if db in process.cmdline():
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            return
    raise AssertionError(f"no proxy process serves {db}")


def test_a_proxy_killed_mid_upload_loses_no_row_and_the_same_upload_key_resumes_it(columns, onchain, tmp_path,
                                                                                   proxy_options):
    db = str(tmp_path / "proxy.sqlite")
    rows = source_rows(columns, range(ROWS))
    args, env = proxy_options()
    source = onchain.signer(SOURCE_A_KEY)

    def hand(url, progress=None):
        return hand_rows([url], source, PRICE, source_mapping(columns), rows, ["Patient"], upload_key=UPLOAD_KEY,
                         page_rows=PAGE, progress=progress)

    def kill_after_two(url, done, total):
        assert total == ROWS // PAGE
        if done == 2:
            killed(db)

    with proxy_process(db, args=args, env=env) as proxy, pytest.raises(ProxyUnavailable):
        hand(proxy.url, kill_after_two)
    with proxy_process(db, args=args, env=env) as restarted:
        assert restarted.health() == 2 * PAGE  # the two pages answered before the kill are stored
        assert hand(restarted.url) == {restarted.url: list(range(1, ROWS + 1))}
        assert restarted.health() == ROWS
        assert [x.row_id for x in restarted.listings(limit=1000)] == list(range(1, ROWS + 1))


def test_pages_and_their_keys_are_a_function_of_the_rows_and_the_upload_key(columns):
    from orchestrator.proxy.batches import records_table
    table = records_table(source_rows(columns, range(120)))
    cut = pages(table, 50)
    assert [p.num_rows for p in cut] == [50, 50, 20] and [p.num_rows for p in pages(table, 50)] == [50, 50, 20]
    assert len({page_key(UPLOAD_KEY, i) for i in range(3)}) == 3
    assert page_key(UPLOAD_KEY, 1) == page_key(bytes(UPLOAD_KEY), 1) != page_key(b"\x00" * 32, 1)
