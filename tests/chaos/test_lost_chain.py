"""Found by the chaos runs: a hosting node whose chain stopped answering in the middle of a run died with a
60-line traceback of requests' internals (exit status 1) instead of saying so. It now ends with one line,
`error: the chain at URL stopped answering: ...`, and status 1, like any other runtime refusal
(docs/architecture.md, "Command line"); the same command resumes once the chain is back."""
from chaos.relay import LinkFault
from chaos.story import Run, StoryConfig


def test_a_hosting_node_whose_chain_goes_away_mid_run_says_so_in_one_line_and_exits_1(files, tmp_path):
    run = Run(0, tmp_path / "run", files, StoryConfig(), log=lambda line: None)
    try:
        run.setup()
        # Every answer from the proxies crawls, so the node is still buying when the chain goes.
        for index in range(3):
            run.relays[str(index)].set(LinkFault(delay_ms=2_000))
        run.host.start()
        seen = run.relays["0"].connections
        while run.relays["0"].connections == seen:
            assert run.host.running, run.host.log.read_text()
            run.chain.process.wait(0.05)
        run.chain.kill()
        ended = run.host.wait(120)
    finally:
        run.stop_services()
        run.chain.kill()
    assert ended is not None, "the node did not end once its chain was gone"
    assert "Traceback" not in run.host.log.read_text(), ended.tail
    assert ended.code == 1 and f"error: the chain at {run.relays['rpc'].url} stopped answering" in ended.tail
