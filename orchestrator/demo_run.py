"""The demo's story, played on a chain: scripts/demo.py prints it on a fresh anvil, and the end-to-end test
(tests/e2e/test_hosted_training_scenario.py) plays the same story, smaller, on the test session's chain.

The world (orchestrator/scenario.py) is data; this module is the play: the owner registers the model and
escrows tokens; three source proxies start as separate processes on loopback (proxy-2 tampers with its
outputs); the sources hand rows to them over HTTP in waves; after each wave the hosting node polls, quotes,
trains and settles or rolls back; the sources claim what they were paid; the owner withdraws half of what is
left in escrow, then fetches the last settled model from the hosting node and verifies it with onnxruntime.
`print_summary` tells it and asserts that every token is accounted for.
"""
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from eth_account import Account
from eth_account.signers.local import LocalAccount

from orchestrator.auth.signing import RequestSigner
from orchestrator.chain.client import MarketClient, TxResult
from orchestrator.chain.proxies import registered_proxies
from orchestrator.commandline import lines_of
from orchestrator.demo_verified import VerifiedDemo, VerifiedRun, owner_proof_check, register_in_verified_mode
from orchestrator.hosting.artifact_gate import OwnerGate
from orchestrator.hosting.artifact_service import create_app
from orchestrator.hosting.artifacts import default_artifacts_dir
from orchestrator.hosting.evidence import statement
from orchestrator.hosting.node import GroupReport, HostingNode, NodeConfig
from orchestrator.hosting.nonces import NonceStore
from orchestrator.hosting.owner_model import Verification, fetch_model, verify_checkpoint
from orchestrator.hosting.registration import OwnerPackage, RegistrationTerms, register, test_set_bytes
from orchestrator.hosting.state import HostState
from orchestrator.proxy.client import ProxyClient
from orchestrator.proxy.server import proxy_process, running
from orchestrator.scenario import SourceRows, World
from orchestrator.source.upload import hand_rows

UNIT = 10**18
PRICE_PER_ROW = UNIT // 100
ESCROW = 20 * UNIT
ROW_CAP = 256
GAS_MONEY = 10 * UNIT
OWNER_TOKENS = 1_000 * UNIT
PROXIES = 3
LYING_PROXY = 2  # runs scripts/lying_proxy.py: the real service, shifting every third row's outputs
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = NodeConfig(group_size=256, epochs=3, batch_size=32, anchor_every_rows=150)


@dataclass(frozen=True)
class Faucet:
    """Where a development chain's money comes from: gas money for fresh keys, tokens for the owner."""

    gas: Callable[[str, int], None]  # (address, wei)
    tokens: Callable[[str, int], None]  # (address, amount)

    @classmethod
    def of(cls, funder, token) -> "Faucet":
        """From a brownie account holding ether and a brownie contract of the token it holds."""
        # The token transfer is sent as plain data so that brownie prints nothing for it (its contract call
        # would log the transaction whatever `silent` says).
        return cls(gas=lambda address, wei: funder.transfer(address, wei, silent=True),
                   tokens=lambda address, amount: funder.transfer(
                       token, data=token.transfer.encode_input(address, amount), silent=True))


@dataclass
class Story:
    """What the play leaves behind, for the summary and for tests to check."""

    chain: MarketClient
    model_id: int
    owner: MarketClient
    node: HostingNode
    sellers: dict[str, tuple[SourceRows, LocalAccount]]  # payout address -> (source, its key)
    reports: list[GroupReport]
    claimed: dict[str, int]  # payout address -> tokens claimed
    deposited: int
    returned: int  # what the owner withdrew from escrow at the end
    bills_dir: Path
    verified: Verification  # the owner's independent check of the last settled model
    zk: VerifiedRun | None = None  # the verified story's circuit and proving times; None for the plain story


@dataclass(frozen=True)
class CloseRecord:
    """A verified checkpoint's close: the market function that closed it, on how many chunk proofs, its gas."""
    checkpoint_id: int
    function: str
    proofs: int
    gas_used: int


@dataclass(frozen=True)
class Reconciliation:
    deposited: int
    paid: int  # claimed by sources
    returned: int  # withdrawn by the owner
    still_escrowed: int
    unclaimed: int  # billed and settled but not (yet) claimed
    market_balance: int

    @property
    def balances(self) -> bool:
        """escrowed = paid + returned + still escrowed + unclaimed, and the market holds exactly what is owed."""
        owed = self.still_escrowed + self.unclaimed
        return self.deposited == self.paid + self.returned + owed and self.market_balance == owed


def new_funded_account(faucet: Faucet) -> LocalAccount:
    """A fresh key for one role, held by this process only, with gas money from the faucet."""
    account = Account.create()
    faucet.gas(account.address, GAS_MONEY)
    return account


def owner_package(world: World, verified: VerifiedDemo | None = None) -> OwnerPackage:
    """The owner's files with the default privacy policy (ldp mode at the default epsilon, chosen on the test set);
    in verified mode the test set is the proven subset (VerifiedDemo.proven_columns)."""
    columns = world.test_columns if verified is None else verified.proven_columns(world.test_columns)
    return OwnerPackage.with_default_policy(json.dumps(world.model_doc).encode(), world.field_table,
                                            test_set_bytes(columns))


@contextmanager
def proxies(workdir: Path, rpc: str, deployment: Path, faucet: Faucet) -> Iterator[list[ProxyClient]]:
    """The three proxy processes, each publishing its listings on chain with a fresh funded key."""
    with ExitStack() as stack:
        clients = []
        for index in range(PROXIES):
            account = new_funded_account(faucet)
            module = "scripts.lying_proxy" if index == LYING_PROXY else "orchestrator.proxy"
            clients.append(stack.enter_context(proxy_process(
                str(workdir / f"proxy-{index}.sqlite"), module=module, name=f"proxy-{index}", start_timeout=60,
                args=["--rpc", rpc, "--deployment", str(deployment), "--key-env", "SPLITLEDGER_PROXY_KEY"],
                env={"SPLITLEDGER_PROXY_KEY": account.key.hex()}, cwd=str(PROJECT_ROOT))))
        yield clients


def play(chain: MarketClient, faucet: Faucet, world: World, workdir: Path, rpc: str, deployment: Path, *,
         config: NodeConfig = DEMO_CONFIG, log: Callable[[str], None] = print,
         verified: VerifiedDemo | None = None) -> Story:
    """The whole story up to the summary. `workdir` receives the owner's files, the proxies' and the hosting
    node's state files, and the published bills. `verified`: the story in verified mode (demo_verified.py)."""
    owner = chain.with_account(new_funded_account(faucet))
    host = chain.with_account(new_funded_account(faucet))
    faucet.tokens(owner.address, OWNER_TOKENS)
    package = owner_package(world, verified)
    for name, data in (("model.json", package.model_bytes), ("fields.json", package.table.to_json()),
                       ("test-set.json", package.test_bytes), ("policy.json", package.policy.to_json())):
        (workdir / name).write_bytes(data)
    model_id, terms, registered, zk = _register(owner, host.address, package, verified, workdir, faucet, log)
    if zk is not None:
        config = zk.demo.node_config(config)
    owner.approve_and_deposit(model_id, ESCROW)
    owner.set_quote(model_id, PRICE_PER_ROW, ROW_CAP)
    baseline = terms.baseline_accuracy_ppm
    mode = "" if zk is None else " in verified mode"
    on = "" if zk is None else f", proven on the first {zk.demo.test_rows} test rows"
    log(f"== owner: model {model_id} registered{mode} (baseline accuracy {baseline / 1e4:.2f} %{on}), "
        f"{ESCROW / UNIT:.0f} tokens escrowed, quote {PRICE_PER_ROW / UNIT} token/row  (tx {registered.tx_hash})")
    policy = package.policy
    log(f"   privacy policy 0x{policy.commitment().hex()}: {policy.summary()}")
    log(f"   what it costs: {package.policy_cost().describe()}")

    log("== proxies: three HTTP services on loopback (proxy-2 tampers with outputs)")
    bills_dir = workdir / "bills"
    # the hosting node's log lines, indented under the demo's own
    with proxies(workdir, rpc, deployment, faucet) as clients, lines_of("orchestrator.hosting",
                                                                        lambda line: log("   " + line)):
        # The node finds the proxies on chain (ProxyRegistered) and signs every request with its own key.
        signer = RequestSigner(host.signer, host.domain())
        names = {c.url: c.name for c in clients}
        holders = {names[p.endpoint]: ProxyClient(p.endpoint, name=names[p.endpoint], signer=signer, holder=p.address)
                   for p in registered_proxies(chain, with_rows_only=False) if p.endpoint in names}
        assert len(holders) == len(clients), "every proxy registers its endpoint on chain when it starts"
        found = ", ".join(f"{name} {(client.holder or '')[:10]}..." for name, client in holders.items())
        log(f"   hosting node found {len(holders)} proxies on chain (ProxyRegistered): {found}; it signs every "
            f"request, they answer only it and sign their answers")
        node = HostingNode(model_id, package.container(model_id), host, holders,
                           HostState(workdir / "host.sqlite"), _with_bills(config, bills_dir),
                           progress=None if zk is None else zk.clock)
        sellers: dict[str, tuple[SourceRows, LocalAccount]] = {}
        reports = []
        for wave, sources in enumerate(world.sources_by_phase, start=1):
            log(f"== wave {wave}: sources hand rows to proxies")
            for source in sources:
                account = new_funded_account(faucet)
                sellers[account.address] = (source, account)
                urls = [clients[i].url for i in source.proxies]
                hand_rows(urls, RequestSigner(account, chain.domain()), int(PRICE_PER_ROW * source.min_price_factor),
                          source.mapping, source.rows, hash_key=source.hash_key)
                log(f"   {source.name}: {len(source.rows)} rows -> {', '.join(clients[i].name for i in source.proxies)}"
                    f"  ({source.note})")
            log(f"== wave {wave}: hosting node polls, quotes and trains")
            reports += node.run(max_groups=5)
    log("== sources claim their payouts")
    claimed = claim_all(chain, reports, sellers, bills_dir, log)
    log("== owner withdraws half of what is left in escrow")
    returned = owner.model(model_id)["escrow"] // 2
    owner.withdraw(model_id, returned, owner.address)
    checked = "with onnxruntime" if zk is None else "with onnxruntime and checks its proofs from the chain"
    log(f"== owner fetches the last settled model from the hosting node and verifies it {checked}")
    verification = fetch_and_verify(owner, model_id, package, workdir, log, zk)
    return Story(chain, model_id, owner, node, sellers, reports, claimed, ESCROW, returned, bills_dir, verification,
                 zk)


def _register(owner: MarketClient, host: str, package: OwnerPackage, verified: VerifiedDemo | None, workdir: Path,
              faucet: Faucet, log: Callable[[str], None]
              ) -> tuple[int, RegistrationTerms, TxResult, VerifiedRun | None]:
    """The plain registration, or the verified one (the circuit set up, the verifier deployed by a fresh key)."""
    if verified is None:
        return (*register(owner, host, package), None)
    deployer = owner.with_account(new_funded_account(faucet))
    return register_in_verified_mode(owner, deployer, host, package, verified, workdir / "host.sqlite", log)


def fetch_and_verify(owner: MarketClient, model_id: int, package: OwnerPackage, workdir: Path,
                     log: Callable[[str], None], zk: VerifiedRun | None = None) -> Verification:
    """What `host serve`, `owner fetch-model` and `owner verify` do: the node serves its artifacts to the owner
    only; the owner checks the weights against the chain's hash and the accuracy with onnxruntime, or, for a
    verified model (`zk`), the proofs from the chain with the model's circuit and SRS."""
    db = workdir / "host.sqlite"
    gate = OwnerGate(owner, NonceStore(db))
    with running(create_app(default_artifacts_dir(db), gate)) as url:
        fetched = fetch_model(owner, url, model_id, None, workdir / "fetched")
    log(f"   checkpoint {fetched.checkpoint_id} ({fetched.state}): {fetched.onnx_file.name} weights "
        f"0x{fetched.weights_hash.hex()[:16]}... match the chain's weightsHashAfter")
    onnx_bytes = fetched.onnx_file.read_bytes()
    proofs = None if zk is None else owner_proof_check(owner, model_id, fetched.checkpoint_id, onnx_bytes, zk)
    verified = verify_checkpoint(owner, model_id, fetched.checkpoint_id, onnx_bytes, package.table.to_json(),
                                 package.test_bytes, proofs=proofs)
    evaluation, proven = verified.evaluation, verified.proven
    if proven is None:
        log(f"   verified: onnxruntime measures {evaluation.accuracy_ppm} ppm ({evaluation.hits} of "
            f"{evaluation.rows} test rows), the accuracy the chain records for checkpoint {verified.checkpoint_id}")
    else:
        log(f"   verified: the {proven.chunks} proofs from the chain prove {proven.accuracy_ppm} ppm ({proven.correct} "
            f"of {proven.rows} proven test rows) for these weights, the accuracy the chain records for checkpoint "
            f"{verified.checkpoint_id}; onnxruntime measures {evaluation.accuracy_ppm} ppm in floating point")
    return verified


def _with_bills(config: NodeConfig, bills_dir: Path) -> NodeConfig:
    return NodeConfig(**{**config.__dict__, "bills_dir": bills_dir})


def claim_all(chain: MarketClient, reports: list[GroupReport], sellers, bills_dir: Path,
              log: Callable[[str], None]) -> dict[str, int]:
    """Every source claims its payout from every settled checkpoint, with the proof from the published bill."""
    claimed: dict[str, int] = {}
    for report in reports:
        if not report.kept:
            continue
        bill = json.loads((bills_dir / f"checkpoint-{report.checkpoint_id}.json").read_text())
        for payout in bill["payouts"]:
            source, account = sellers[payout["source"]]
            proof = [bytes.fromhex(p[2:]) for p in payout["proof"]]
            result = chain.with_account(account).claim(report.checkpoint_id, int(payout["amount"]), proof)
            claimed[account.address] = claimed.get(account.address, 0) + int(payout["amount"])
            log(f"   {source.name} claims {int(payout['amount']) / UNIT} tokens from checkpoint "
                f"{report.checkpoint_id}  (tx {result.tx_hash})")
    return claimed


def reconcile(story: Story) -> Reconciliation:
    chain = story.chain
    settled = [chain.checkpoint(r.checkpoint_id) for r in story.reports if r.kept]
    return Reconciliation(
        deposited=story.deposited, paid=sum(story.claimed.values()), returned=story.returned,
        still_escrowed=chain.model(story.model_id)["escrow"],
        unclaimed=sum(c["billTotal"] - c["claimed"] for c in settled),
        market_balance=chain.balance_of(chain.market.address))


def source_counts(story: Story) -> dict[str, dict[str, int]]:
    """Per payout address: rows by what became of them (used, dropped, offered, ...; rejected and declined
    rows by their reason: missing_fields, price, ...), each row counted once however many proxies hold it."""
    counts: dict[str, dict[str, int]] = {}
    for source, status, reason, rows in story.node.state.listing_counts():
        key = reason if status in ("rejected", "declined") else status
        counts.setdefault(source, {}).setdefault(key, 0)
        counts[source][key] += rows
    return counts


def print_summary(story: Story, elapsed: float, log: Callable[[str], None] = print) -> None:
    """Accuracy per checkpoint, rows per source, tokens paid, mismatches, anchors and the reconciliation,
    which it asserts (as it asserts the story's two settled groups and one rolled back)."""
    log("\n== summary")
    log(f"{'checkpoint':>10} {'rows':>9} {'accuracy before':>16} {'after':>8}  outcome      transactions")
    for r in story.reports:
        outcome = "settled" if r.kept else "rolled back"
        txs = ", ".join(f"{k} {v[:12]}..." for k, v in r.txs.items())
        log(f"{r.checkpoint_id:>10} {r.rows_used:>4}/{r.rows_planned:<4} {r.accuracy_before / 1e4:>15.2f}% "
            f"{r.accuracy_after / 1e4:>7.2f}%  {outcome:<12} {txs}")
    if story.zk is not None:
        print_proofs(story, story.zk, log)
    counts = source_counts(story)
    log(f"\n{'source':<12} {'listed':>6} {'rejected':>8} {'declined':>8} {'used':>5} {'dropped':>7} {'paid':>8}")
    for address, (source, _account) in story.sellers.items():
        c = counts.get(address, {})
        log(f"{source.name:<12} {sum(c.values()):>6} {c.get('missing_fields', 0):>8} {c.get('price', 0):>8} "
            f"{c.get('used', 0):>5} {c.get('dropped', 0):>7} {story.claimed.get(address, 0) / UNIT:>8.2f}")
    log(f"\nredundancy mismatches recorded per proxy: {story.node.state.mismatch_counts() or 'none'}")
    evidence = story.node.state.mismatch_evidence()
    domain = story.chain.domain()
    signers = {e.holder: statement(e.answer, domain).signer for e in evidence}
    # the node's holders are this demo's ProxyClients (hosting/node.py types them as plain objects)
    assert all(signers[e.holder] == cast(ProxyClient, story.node.holders[e.holder]).holder for e in evidence)
    log(f"mismatch evidence: {len(evidence)} signed answers, each recovering to its proxy's registered address "
        f"({', '.join(f'{name} {address[:10]}...' for name, address in sorted(signers.items()))})")
    log("\nhistory anchors")
    for index, root, first, count, tx, block_number, block_hash, _t in story.node.state.anchors():
        log(f"   anchor {index}: rows {first}..{first + count - 1}, root 0x{root.hex()}, "
            f"block {block_number} {'0x' + block_hash.hex() if block_hash else '(unconfirmed)'}  (tx {tx})")
    money = reconcile(story)
    log(f"\nreconciliation: escrowed {money.deposited / UNIT} = paid {money.paid / UNIT} + returned "
        f"{money.returned / UNIT} + still escrowed {money.still_escrowed / UNIT} "
        f"(+ unclaimed {money.unclaimed / UNIT})")
    assert money.balances, f"escrow does not reconcile: {money}"
    settled = [r for r in story.reports if r.kept]
    rolled_back = [r for r in story.reports if not r.kept]
    # Under the default ldp policy a later group of honest rows is paid only if it raises what the first reached,
    # which DP noise on a few hundred rows makes a matter of chance (docs/privacy.md, "What the gate sees").
    assert settled and rolled_back, "the story needs a settled group and a rolled-back one"
    assert sum(sum(r.paid.values()) for r in story.reports) == money.paid + money.unclaimed
    best = story.chain.model(story.model_id)["bestAccuracy"]
    assert story.verified.on_chain_ppm == best, "the owner verified the model the chain settled last"
    how = "with onnxruntime" if story.zk is None else (f"from the chain's proofs (proven on the first "
                                                       f"{story.zk.demo.test_rows} test rows)")
    log(f"best accuracy on chain {best / 1e4:.2f} %, verified by the owner {how}; demo took {elapsed:.0f} s")


def closes(story: Story) -> list[CloseRecord]:
    """Each checkpoint's close as its transaction carried it, with its gas: a verified story's closes are all
    verified ones (settleCheckpointVerified, rollbackCheckpointVerified), read back from the calldata."""
    found = []
    for report in story.reports:
        proven = story.chain.proven_close(report.checkpoint_id)  # refused for a close that carried no proof
        receipt = story.chain.receipt("0x" + proven.tx_hash.hex())
        # the proof's fields in the ABI's order (evm.AccuracyProof.from_abi): W, commitments, correct, rows, proofs
        found.append(CloseRecord(report.checkpoint_id, proven.function, len(proven.proof[4]),
                                 receipt["gasUsed"] if receipt is not None else 0))
    return found


def print_proofs(story: Story, zk: VerifiedRun, log: Callable[[str], None]) -> None:
    """The verified story's proofs: the circuit, and per checkpoint its close, proofs, gas and proving time."""
    demo = zk.demo
    log(f"\nverified mode: accuracy (baseline and every gate) on the proven test set, the first {demo.test_rows} test "
        f"rows in {demo.chunks} chunks of {demo.chunk_rows}; circuit logrows {zk.logrows}, set up in "
        f"{zk.setup_seconds:.0f} s, verifier {zk.verifier}")
    seconds = zk.clock.seconds if len(zk.clock.seconds) == len(story.reports) else [None] * len(story.reports)
    for close, proving in zip(closes(story), seconds):
        took = "" if proving is None else f", proven in {proving:.0f} s"
        log(f"   checkpoint {close.checkpoint_id}: {close.function} on {close.proofs} proofs, gas "
            f"{close.gas_used:,}{took}")
