"""A proxy started as its own process (`python -m orchestrator.proxy`) answers /v1/health, naming its address,
before any row is uploaded. How soon it answers is a benchmark figure (bench/bench_startup.py), not a test."""
import httpx
from eth_account import Account

from orchestrator.proxy.server import proxy_process


def test_a_started_proxy_process_answers_health_with_its_address(tmp_path, proxy_options, onchain):
    args, env = proxy_options()
    with proxy_process(str(tmp_path / "proxy.sqlite"), args=args, env=env) as proxy:
        answer = httpx.get(f"{proxy.url}/v1/health", timeout=10)
    assert answer.status_code == 200
    health = answer.json()
    assert health["status"] == "ok" and health["rows"] == 0
    assert health["holder"] == Account.from_key(env["SPLITLEDGER_PROXY_KEY"]).address
    assert health["chain_id"] == onchain.domain.chain_id
