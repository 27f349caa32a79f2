"""A throwaway local chain for benchmarks, tools and the demo: anvil or Ganache on a free loopback port, the
token and the market deployed from brownie's compiled artifacts (build/contracts), a deployment file.

Holders now check every request against the chain (orchestrator/proxy/gate.py), so anything that starts
proxies needs one; the test suite has brownie's anvil, scripts/demo.py too, and this is the same for the rest.
anvil and Ganache come from npm (bin/setup; bin/env puts anvil on PATH, Ganache is node_modules/.bin/ganache).
Both hold the same development accounts (the default test mnemonic), whose first one funds everything.

    python -m orchestrator.chain.devchain command ganache --port 8545   # the node's command line, one per line
"""
import argparse
import shutil
import socket
import subprocess
import sys
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
CHAINS = ("anvil", "ganache")
# anvil's (and hardhat's, and brownie's development network's) accounts: Ganache is started with the same
# mnemonic, so ANVIL_DEV_KEY (devnet.py) deploys and funds on either.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
GANACHE = PROJECT_ROOT / "node_modules" / ".bin" / "ganache"
GANACHE_CHAIN_ID = 1337
# Ganache 7.9.2 runs EVMs up to shanghai, the project's compile target (brownie-config.yaml, docs/toolchain.md).
GANACHE_HARDFORK = "shanghai"
# What a wallet that sends no price pays on Ganache (its default, 2 gwei). Never 0: Ganache's blocks carry an
# EIP-1559 base fee (1 gwei at genesis, shrinking by an eighth each near-empty block, never to 0), and it refuses
# a transaction whose fee is below it; the orchestrator prices from the base fee itself (fees.py).
GANACHE_GAS_PRICE = 2 * 10**9
# brownie's development network gives anvil a 12,000,000 gas block; Ganache gets the same (its default is 30M).
BLOCK_GAS_LIMIT = 12_000_000


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


def node_command(chain: str, port: int, chain_id: int | None = None, options: Sequence[str] = ()) -> list[str]:
    """The command line of a local `chain` node ("anvil" or "ganache") serving JSON-RPC on loopback `port`,
    with further node `options` (e.g. anvil's --hardfork, --block-time)."""
    if chain == "anvil":
        anvil = shutil.which("anvil")
        if anvil is None:
            raise ChainError("anvil is not on PATH: run bin/setup, then `source bin/env`")
        return [anvil, "--port", str(port), "--silent", *(["--chain-id", str(chain_id)] if chain_id else []),
                *options]
    if chain == "ganache":
        if not GANACHE.exists():
            raise ChainError(f"Ganache is not installed at {GANACHE}: run bin/setup (npm package ganache)")
        return [str(GANACHE), "--server.host", "127.0.0.1", "--server.port", str(port), "--server.ws", "false",
                "--chain.chainId", str(chain_id or GANACHE_CHAIN_ID), "--chain.hardfork", GANACHE_HARDFORK,
                # Reverts as RPC errors carrying the revert data (brownie's own Ganache launcher sets it too), so
                # a simulated call that reverts names the contract's custom error.
                "--chain.vmErrorsOnRPCResponse", "true",
                "--wallet.mnemonic", DEV_MNEMONIC, "--wallet.totalAccounts", "10", "--wallet.defaultBalance", "10000",
                "--miner.blockGasLimit", str(BLOCK_GAS_LIMIT), "--miner.defaultGasPrice", str(GANACHE_GAS_PRICE),
                "--logging.quiet", *options]
    raise ChainError(f"unknown local chain {chain!r}: choose one of {', '.join(CHAINS)}")


@contextmanager
def local_node(chain: str = "anvil", port: int | None = None, chain_id: int | None = None,
               start_timeout: float = 30.0, options: Sequence[str] = ()) -> Iterator[str]:
    """A bare local `chain` node (nothing deployed) on `port` (default: a free loopback port), with further
    node `options`, for the duration of the block; its RPC URL."""
    port = port or _free_port()
    process = subprocess.Popen(node_command(chain, port, chain_id, options), stdout=subprocess.DEVNULL)
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


def anvil_node(port: int | None = None, chain_id: int | None = None, start_timeout: float = 30.0,
               options: Sequence[str] = ()):
    """A bare anvil (nothing deployed): local_node("anvil", ...)."""
    return local_node("anvil", port, chain_id, start_timeout, options)


@contextmanager
def dev_chain(start_timeout: float = 30.0, chain: str = "anvil") -> Iterator[DevChain]:
    """A local `chain` node (anvil or ganache) with the market deployed, for the duration of the block."""
    with local_node(chain, start_timeout=start_timeout) as rpc:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.chain.devchain",
                                     description="Local development chains (anvil, Ganache).")
    commands = parser.add_subparsers(dest="what", required=True)
    command = commands.add_parser("command", help="print the command line that starts a local node, one "
                                                   "argument per line (bin/demo runs it)")
    command.add_argument("chain", choices=CHAINS)
    command.add_argument("--port", type=int, default=8545)
    command.add_argument("--chain-id", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        print("\n".join(node_command(args.chain, args.port, args.chain_id)))
    except ChainError as e:
        print(f"devchain: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
