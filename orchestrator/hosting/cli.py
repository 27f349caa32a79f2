"""`splitledger host` (hosting node) and `splitledger owner` (model owner) command lines.

Keys come from the environment (orchestrator/chain/keys.py): SPLITLEDGER_HOST_KEY for the hosting node,
SPLITLEDGER_OWNER_KEY for the owner (or their _KEYSTORE/_PASSWORD forms), or from `--keystore FILE`; never
from arguments. Only the commands that send a transaction or sign a request ask for one: `owner status` and
`host status` read with none.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.chain.deployment import load_deployment
from orchestrator.chain.devnet import DEFAULT_LIVE_DEPTH
from orchestrator.chain.faucet import GAS_MONEY_WEI
from orchestrator.commandline import CommandParser, add_key_option, progress_bars, signing_account, standalone
from orchestrator.commandline import main as run_command
from orchestrator.errors import ChainUnavailable, SplitLedgerError

from . import owner_files
from .artifact_cli import add_artifacts_dir_option, add_owner_commands, add_serve_command, add_srs_option
from .proving import PROVE_TIMEOUT_S
from .records import Commitments
from .registration import DEFAULT_POLICY_MODES, OwnerPackage, PolicyChoice, register, verify_registration

# Each command imports what it runs: the hosting node's training code (JAX) for `host run` alone, web3 for the
# commands that reach the chain, so --help and `host status` start without either.
if TYPE_CHECKING:
    from orchestrator.auth.signing import RequestSigner
    from orchestrator.chain.client import MarketClient
    from orchestrator.proxy.client import ProxyClient

HOST_DESCRIPTION = """Run a SplitLedger hosting node for one registered model: poll the proxies' listings, buy rows
at the owner's quote, train groups behind backup points, settle or roll back on chain, anchor the history set.
State lives in a SQLite file; run the same command again after a crash and it finishes the interrupted group
without paying any row twice. `run` signs with SPLITLEDGER_HOST_KEY (or SPLITLEDGER_HOST_KEYSTORE + _PASSWORD, or
--keystore); `status` and `serve` need no key."""

OWNER_DESCRIPTION = """A SplitLedger model owner: register a model (commitments to the model file, test set, field
table and privacy policy), escrow tokens, set the quote, withdraw unlocked escrow. Signs with
SPLITLEDGER_OWNER_KEY (or SPLITLEDGER_OWNER_KEYSTORE + _PASSWORD, or --keystore). fit-table and import-onnx make
the owner's files and need neither a chain nor a key; status and verify read the chain with no key."""


def _chain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC endpoint (default: %(default)s)")
    parser.add_argument("--deployment", default="deployments/development.json", type=Path,
                        help="deployment file written by scripts/deploy.py (default: %(default)s)")
    parser.add_argument("--confirmations", type=_depth, metavar="BLOCKS",
                        help="blocks on top of a transaction's own before it counts as done (default: 0 on a "
                             f"development chain, {DEFAULT_LIVE_DEPTH} elsewhere; docs/chain.md)")


def _depth(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a number of blocks, 0 or more, not {text!r}")
    return int(text)


def _package_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path,
                        help="model file (docs/model-format.md); owner register also takes an ONNX graph (.onnx)")
    parser.add_argument("--fields", required=True, type=Path, help="standard field table (docs/container.md)")
    parser.add_argument("--test-set", required=True, type=Path,
                        help="target test set: JSON object of columns under standard names")
    parser.add_argument("--policy", type=Path,
                        help="privacy policy file (docs/privacy.md); default: the default policy, chosen on "
                             "--reference or else on the test set")
    parser.add_argument("--reference", type=Path,
                        help="labelled reference rows (columns under standard names) the default policy is chosen "
                             "on, when no --policy is given (default: the test set)")
    default = PolicyChoice()
    chosen = parser.add_argument_group("the default policy, when no --policy is given (docs/privacy.md)")
    chosen.add_argument("--privacy", choices=DEFAULT_POLICY_MODES, default=default.mode,
                        help="ldp: local differential privacy of every release (default); projection: u = P x "
                             "without noise, no DP guarantee")
    chosen.add_argument("--epsilon", type=float, default=default.epsilon,
                        help=f"ldp: what one release of a row costs, at delta {default.delta} "
                             "(default: %(default)s)")
    chosen.add_argument("--label-share", type=float, default=default.label_share,
                        help="ldp: the fraction of epsilon spent on the label's randomized response "
                             "(default: %(default)s)")
    chosen.add_argument("--labels-in-clear", action="store_true",
                        help="ldp: release labels as they are (then the guarantee does not cover them)")
    chosen.add_argument("--budget", type=float,
                        help="ldp: the most epsilon a row may have spent across every model at its holder after a "
                             "release under this policy (default: one release)")


def _package(args) -> OwnerPackage:
    choice = PolicyChoice(args.privacy, args.epsilon, None if args.labels_in_clear else args.label_share, args.budget)
    return OwnerPackage.from_files(args.model, args.fields, args.test_set, args.policy, args.reference, choice)


def _client(args, role: str | None) -> MarketClient:
    """The market as `role` signs for it, or read-only (no key asked for) when `role` is None."""
    from orchestrator.chain.client import MarketClient, connect
    account = None if role is None else signing_account(args, role)
    return MarketClient(connect(args.rpc), load_deployment(args.deployment), account,
                        confirmations=args.confirmations)


def configure_host(parser: CommandParser) -> None:
    parser.description = HOST_DESCRIPTION
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="train groups until rows, escrow or --groups run out")
    run.set_defaults(handler=_host_run)
    _chain_arguments(run)
    add_key_option(run, "host")
    _package_arguments(run)
    run.add_argument("--model-id", required=True, type=int, help="the model's id on chain")
    run.add_argument("--proxy", action="append", metavar="URL",
                     help="a proxy to buy from, instead of those registered on chain; repeat")
    run.add_argument("--ca-bundle", metavar="FILE",
                     help="PEM file of the CA certificates https proxies must verify against (default: the "
                          "system's trust store)")
    run.add_argument("--db", required=True, type=Path, help="the hosting node's state file (SQLite)")
    run.add_argument("--groups", type=int, default=10, help="most groups to close in this run (default: %(default)s)")
    run.add_argument("--group-size", type=int, default=256, help="rows per checkpoint (default: %(default)s)")
    run.add_argument("--epochs", type=int, default=2, help="passes over a group's rows (default: %(default)s)")
    run.add_argument("--batch-size", type=int, default=128, help="rows per training round (default: %(default)s)")
    run.add_argument("--max-rounds", type=int, help="cap on training rounds per group")
    run.add_argument("--anchor-every-rows", type=int, default=500, help="anchor after this many new history rows")
    run.add_argument("--anchor-every-seconds", type=float, default=60.0, help="or after this many seconds")
    run.add_argument("--bills-dir", type=Path, help="where to publish bills with claim proofs (JSON)")
    run.add_argument("--chunk-rows", type=int, default=8,
                     help="a verified model's test rows per proof: the ones host zk-setup used (default: %(default)s)")
    run.add_argument("--prove-timeout", type=float, default=PROVE_TIMEOUT_S, metavar="SECONDS",
                     help="a verified model's proof of one chunk is stopped past this, and the group is left "
                          "unsettled, its checkpoint open, to be trained and proven again by the next run "
                          "(default: %(default)s)")
    add_srs_option(run)
    add_artifacts_dir_option(run)
    add_serve_command(commands, _chain_arguments)
    status = commands.add_parser("status", help="groups, bills and anchors recorded in a state file (no key)")
    status.set_defaults(handler=_host_status)
    status.add_argument("--db", required=True, type=Path)
    zk_setup = commands.add_parser(
        "zk-setup", help="build a verified model's accuracy circuit and keys; print what registering it puts on "
                         "chain (no key)",
        description="Builds the model's one accuracy circuit (docs/zk.md) from its initial weights and test set, in "
                    "<zk dir>/model-<id>/, and prints as JSON what registering it in verified mode needs: the "
                    "verifying-key artifact (its file and digest), the test set's chunk commitments and root, and "
                    "the initial weights commitment. Run again with the same files, it reuses the folder.")
    zk_setup.set_defaults(handler=_host_zk_setup)
    _chain_arguments(zk_setup)
    _package_arguments(zk_setup)
    zk_setup.add_argument("--model-id", required=True, type=int, help="the model's id on chain")
    zk_setup.add_argument("--db", required=True, type=Path,
                          help="the hosting node's state file; the circuit goes beside it (host.sqlite -> host.zk/)")
    zk_setup.add_argument("--chunk-rows", type=int, default=8,
                          help="test rows per proof (default: %(default)s; docs/zk.md, \"Costs\")")
    add_srs_option(zk_setup)


def build_host_parser(prog: str = "splitledger host") -> CommandParser:
    return standalone(prog, configure_host)


def host_main(argv: Sequence[str] | None = None, *, prog: str = "splitledger host") -> int:
    return run_command(build_host_parser(prog), argv)


def _host_run(args: argparse.Namespace) -> int:
    import requests

    from orchestrator.auth.signing import RequestSigner

    from .node import HostingNode, NodeConfig
    from .state import HostState
    owner_files.refuse_onnx_for_host(args.model)
    host = _client(args, "host")
    package = _package(args)
    verify_registration(package, Commitments.registered(host.model(args.model_id)))
    if host.model(args.model_id)["hostingNode"] != host.address:
        raise SplitLedgerError(f"{host.address} is not model {args.model_id}'s hosting node")
    signer = RequestSigner(host.signer, host.domain())
    holders = proxy_holders(host, signer, args.proxy, ca_bundle=args.ca_bundle)
    config = NodeConfig(group_size=args.group_size, epochs=args.epochs, batch_size=args.batch_size,
                        max_rounds=args.max_rounds, anchor_every_rows=args.anchor_every_rows,
                        anchor_every_seconds=args.anchor_every_seconds, bills_dir=args.bills_dir,
                        artifacts_dir=args.artifacts_dir, srs=args.srs, chunk_rows=args.chunk_rows,
                        prove_timeout=args.prove_timeout)
    bars = progress_bars(args)
    try:
        node = HostingNode(args.model_id, package.container(args.model_id), host, holders, HostState(args.db),
                           config, progress=bars)
        reports = node.run(args.groups)
    except requests.exceptions.RequestException as e:
        # web3's transport (nothing else here uses requests): the chain stopped answering after the node had
        # connected, past web3's own retries. Nothing is lost: the state file has it all, and the same command
        # resumes once the chain is back (found by the chaos runs, docs/reliability.md).
        raise ChainUnavailable(f"the chain at {args.rpc} stopped answering: {e}; run the same command again to "
                               f"resume") from None
    finally:
        if bars is not None:
            bars.close()
    kept = sum(r.kept for r in reports)
    print(f"closed {len(reports)} groups: {kept} settled, {len(reports) - kept} rolled back")
    return 0


def proxy_holders(chain: MarketClient, signer: RequestSigner, override: Sequence[str] | None, *,
                  ca_bundle: str | None = None) -> dict[str, ProxyClient]:
    """The proxies to buy from: those registered on chain that listed rows (each client signing for, and
    accepting answers only from, the registered address), or the `--proxy` URLs given instead (their address
    then taken from the proxy itself, and checked against its registration). `ca_bundle`: what https proxies'
    certificates must verify against (default: the system's trust store)."""
    from orchestrator.chain.proxies import registered_proxies
    from orchestrator.proxy.client import ProxyClient
    if override:
        registered = {p.endpoint.rstrip("/"): p.address for p in registered_proxies(chain, with_rows_only=False)}
        return {url: ProxyClient(url, signer=signer, holder=registered.get(url.rstrip("/")), ca_bundle=ca_bundle)
                for url in override}
    found = registered_proxies(chain)
    if not found:
        raise SplitLedgerError("no proxy registered on chain has listed rows (give --proxy URL to name one)")
    return {p.endpoint: ProxyClient(p.endpoint, signer=signer, holder=p.address, ca_bundle=ca_bundle) for p in found}


def _host_status(args: argparse.Namespace) -> int:
    from .state import HostState
    if not args.db.exists():
        raise SplitLedgerError(f"no state file at {args.db}")
    state = HostState(args.db)
    for group in state.groups():
        print(f"group {group.group_id}: checkpoint {group.checkpoint_id} {group.phase}, "
              f"accuracy {group.accuracy_before} -> {group.accuracy_after} ppm, "
              f"{len(group.plan)} rows planned, {json.dumps(group.stats)}")
    for a in state.anchors():
        shown = f"block {a.block_number} 0x{a.block_hash.hex()}" if a.block_hash else "not confirmed"
        print(f"anchor {a.index}: rows {a.first_row}..{a.first_row + a.row_count - 1} root 0x{a.root.hex()} {shown}")
    return 0


def _host_zk_setup(args: argparse.Namespace) -> int:
    from orchestrator.chain.client import connect

    from .proving import default_zk_dir, setup_container, setup_dir
    chain_id = connect(args.rpc).eth.chain_id  # the SRS rule is the chain's: a local SRS on dev chains only
    package = _package(args)
    setup = setup_container(setup_dir(default_zk_dir(args.db), args.model_id), package.container(args.model_id),
                            args.chunk_rows, chain_id=chain_id, srs=args.srs)
    registration = setup.registration
    print(json.dumps({"modelId": args.model_id, "folder": str(setup.folder), "logrows": setup.circuit.logrows,
                      "srs": str(setup.circuit.srs), "chunkRows": setup.rows, "chunks": len(setup.chunks),
                      "vkaFile": str(setup.folder / "vka.bytes"), "vkaWords": len(registration.vka),
                      "vkaDigest": "0x" + registration.vka_digest.hex(),
                      "testSetZkRoot": "0x" + registration.test_set_root.hex(),
                      "chunkCommitments": [hex(v) for v in registration.chunk_commitments.words],
                      "weightsCommitment": hex(registration.weights_commitment)}, indent=1))
    return 0


def configure_owner(parser: CommandParser) -> None:
    parser.description = OWNER_DESCRIPTION
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register = commands.add_parser("register", help="register a model and print its id")
    register.set_defaults(handler=_register)
    _chain_arguments(register)
    add_key_option(register, "owner")
    _package_arguments(register)
    register.add_argument("--host", required=True, metavar="ADDRESS", help="the hosting node's address")
    register.add_argument("--policy-out", type=Path, metavar="FILE",
                          help="write the privacy policy registered (give it to the hosting node: host run --policy)")
    owner_files.add_register_arguments(register)
    for name, text in (("deposit", "escrow tokens for a model"), ("withdraw", "withdraw unlocked escrow")):
        sub = commands.add_parser(name, help=text)
        sub.set_defaults(handler=_owner_transaction)
        _chain_arguments(sub)
        add_key_option(sub, "owner")
        sub.add_argument("--model-id", required=True, type=int)
        sub.add_argument("--amount", required=True, type=int, help="in the token's smallest unit")
    quote = commands.add_parser("quote", help="set the price per row and the rows-per-checkpoint cap")
    quote.set_defaults(handler=_owner_transaction)
    _chain_arguments(quote)
    add_key_option(quote, "owner")
    quote.add_argument("--model-id", required=True, type=int)
    quote.add_argument("--price", required=True, type=int, help="per row, in the token's smallest unit")
    quote.add_argument("--row-cap", type=int, default=0, help="rows per checkpoint, 0 for none (default)")
    status = commands.add_parser("status", help="a model's registry entry, escrow, quote and best accuracy (no key)")
    status.set_defaults(handler=_owner_status)
    _chain_arguments(status)
    status.add_argument("--model-id", required=True, type=int)
    faucet = commands.add_parser(
        "faucet", help="development chains only: tokens and gas money from the deployer",
        description="On a development chain (id 31337 or 1337; refused on any other), sends tokens from the deployer, "
                    "which holds the test token's whole supply (the chain's well-known first account, or "
                    "SPLITLEDGER_DEPLOYER_KEY), and tops the receiver's ether up for gas.")
    faucet.set_defaults(handler=_faucet)
    _chain_arguments(faucet)
    add_key_option(faucet, "owner")
    faucet.add_argument("--amount", required=True, type=int, help="tokens, in the token's smallest unit (0: gas only)")
    faucet.add_argument("--to", metavar="ADDRESS",
                        help="who receives them (default: the owner, SPLITLEDGER_OWNER_KEY's address); a host, source "
                             "or proxy key needs gas money too")
    faucet.add_argument("--gas", type=int, default=GAS_MONEY_WEI, metavar="WEI",
                        help="top the receiver's ether up to this much (default: %(default)s, one ether)")
    owner_files.add_commands(commands)
    for name in owner_files.COMMANDS:
        commands.choices[name].set_defaults(handler=owner_files.run)
    add_owner_commands(commands, _chain_arguments)


def build_owner_parser(prog: str = "splitledger owner") -> CommandParser:
    return standalone(prog, configure_owner)


def owner_main(argv: Sequence[str] | None = None, *, prog: str = "splitledger owner") -> int:
    return run_command(build_owner_parser(prog), argv)


def _register(args: argparse.Namespace) -> int:
    args.model = owner_files.model_for_registration(args)
    package = _package(args)  # the files are checked before any chain or key is needed
    model_id, terms, result = register(_client(args, "owner"), args.host, package)
    if args.policy_out:
        args.policy_out.write_bytes(package.policy.to_json())
    print(f"model {model_id} registered, baseline accuracy {terms.baseline_accuracy_ppm} ppm, initial "
          f"weights 0x{terms.initial_weights_hash.hex()}, privacy policy "
          f"{package.policy.mode} 0x{package.policy.commitment().hex()} (tx {result.tx_hash})")
    print(f"privacy policy: {package.policy.summary()}")
    print(f"what it costs: {package.policy_cost().describe()}")
    return 0


# The owner's one-transaction commands: what the answer says, and the transaction.
OWNER_TRANSACTIONS = {
    "deposit": ("deposited", lambda owner, args: owner.approve_and_deposit(args.model_id, args.amount)),
    "withdraw": ("withdrawn", lambda owner, args: owner.withdraw(args.model_id, args.amount, owner.address)),
    "quote": ("quote set", lambda owner, args: owner.set_quote(args.model_id, args.price, args.row_cap)),
}


def _owner_transaction(args: argparse.Namespace) -> int:
    done, send = OWNER_TRANSACTIONS[args.command]
    print(f"{done} (tx {send(_client(args, 'owner'), args).tx_hash})")
    return 0


def _owner_status(args: argparse.Namespace) -> int:
    model = _client(args, None).model(args.model_id)  # a read: the deployment's addresses, no key
    print(json.dumps({k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in model.items()}, indent=1))
    return 0


def _faucet(args: argparse.Namespace) -> int:
    from orchestrator.chain.client import MarketClient, connect
    from orchestrator.chain.devnet import deployer_account, require_dev_chain
    from orchestrator.chain.faucet import pay_from_faucet
    w3 = connect(args.rpc)
    require_dev_chain(w3.eth.chain_id, "the faucet")  # before asking for a deployer key it would not use
    funder = MarketClient(w3, load_deployment(args.deployment), deployer_account(w3.eth.chain_id),
                          confirmations=args.confirmations)
    paid = pay_from_faucet(funder, args.to or signing_account(args, "owner").address, args.amount, args.gas)
    gas = f"{paid.wei} wei for gas (tx {paid.gas_tx})" if paid.gas_tx else "already enough ether for gas"
    print(f"{paid.to}: {paid.tokens} tokens (tx {paid.token_tx}), {gas}")
    return 0
