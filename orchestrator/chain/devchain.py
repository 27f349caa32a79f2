"""A throwaway local chain for benchmarks and tools run outside the test suite: anvil on a free loopback port,
the token and the market deployed from brownie's compiled artifacts (build/contracts), a deployment file.

Holders now check every request against the chain (orchestrator/proxy/gate.py), so anything that starts
proxies needs one; the test suite has brownie's anvil, scripts/demo.py too, and this is the same for the rest.
anvil comes from npm (bin/setup; bin/env puts it on PATH). Its first development account funds everything.
"""
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from orchestrator.auth.signing import RequestSigner
from orchestrator.errors import ChainError
from orchestrator.hashing.keccak import keccak256

from .client import MarketClient, connect
from .deploy import deploy_contract
from .deployment import PROJECT_ROOT, Deployment, save_deployment
from .devnet import ANVIL_DEV_KEY as ANVIL_FUNDED_KEY
from .sending import send_transaction
CHECKPOINT_TIMEOUT = 3600


@dataclass
class DevChain:
    rpc: str
    deployment: Deployment
    deployment_file: Path
    funder: LocalAccount

    def client(self, account: LocalAccount | None = None) -> MarketClient:
        return MarketClient(connect(self.rpc), self.deployment, account, poll_latency=0.005)

    def funded_account(self, wei: int = 10**19) -> LocalAccount:
        """A fresh key with gas money."""
        account = Account.create()
        send_transaction(connect(self.rpc), self.funder, {"to": account.address, "value": wei, "gas": 21_000},
                         what="gas money", poll=0.005)
        return account

    def register_model(self, table, policy) -> tuple[int, RequestSigner]:
        """A model with this field table and privacy policy, hosted by a fresh key: (its id, the host's signer)."""
        owner, host = self.funded_account(), self.funded_account()
        # Stand-in model, test set and weights hashes: such a model is sold rows, never trained.
        model_id, _ = self.client(owner).register_model(host.address, keccak256(b"model"), keccak256(b"test set"),
                                                        table.commitment(), policy.commitment(),
                                                        keccak256(b"weights"), 0)
        return model_id, self.signer(host)

    def signer(self, account: LocalAccount | None = None) -> RequestSigner:
        """`account`'s (or a fresh key's) signer on this chain and market: a source's uploads, a host's requests."""
        return RequestSigner(account or Account.create(), self.client().domain())

    def proxy_options(self) -> tuple[list[str], dict[str, str]]:
        """(arguments, environment) of a proxy process on this chain, with a fresh funded key."""
        account = self.funded_account(10**18)
        return (["--rpc", self.rpc, "--deployment", str(self.deployment_file), "--key-env", "SPLITLEDGER_PROXY_KEY"],
                {"SPLITLEDGER_PROXY_KEY": account.key.hex()})


@contextmanager
def anvil_node(port: int | None = None, chain_id: int | None = None, start_timeout: float = 30.0,
               options: Sequence[str] = ()) -> Iterator[str]:
    """A bare anvil (nothing deployed) on `port` (default: a free loopback port), with further anvil `options`
    (e.g. a hardfork), for the duration of the block; its RPC URL."""
    anvil = shutil.which("anvil")
    if anvil is None:
        raise ChainError("anvil is not on PATH: run bin/setup, then `source bin/env`")
    port = port or _free_port()
    command = [anvil, "--port", str(port), "--silent", *(["--chain-id", str(chain_id)] if chain_id else []), *options]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    rpc = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                connect(rpc, timeout=2)
                break
            except ChainError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield rpc
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def dev_chain(start_timeout: float = 30.0) -> Iterator[DevChain]:
    """anvil with the market deployed, for the duration of the block."""
    with anvil_node(start_timeout=start_timeout) as rpc:
        w3 = connect(rpc)
        funder = Account.from_key(ANVIL_FUNDED_KEY)
        token = deploy_contract(w3, funder, "SplitLedgerToken", "Bench", "BNC", 10**27)["contractAddress"]
        market = deploy_contract(w3, funder, "SplitLedgerMarket", token, CHECKPOINT_TIMEOUT)["contractAddress"]
        with tempfile.TemporaryDirectory() as tmp:
            deployment = Deployment("development", w3.eth.chain_id, token, market, w3.eth.block_number,
                                    PROJECT_ROOT / "build" / "contracts")
            path = Path(tmp) / "deployment.json"
            save_deployment(deployment, path)
            yield DevChain(rpc, deployment, path, funder)


def _free_port() -> int:
    """A loopback port nothing listens on now (the chain package does not reach into the proxy's helpers)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
