"""The demo's story in verified mode (make demo VERIFIED=1; docs/zk.md, "The verified demo"): what the plain
story does differently, for orchestrator/demo_run.py to call.

The model is registered in verified mode on a circuit the hosting node sets up first (a local SRS: dev chains
only, with its loud warning), with ezkl's reusable verifier deployed and the circuit's VKA registered in it;
the node proves every group and settles or rolls back on the proofs; the owner's fetch-and-verify checks the
proofs from the close's calldata. Proving is linear in the test rows (the world's 143 are 18 chunks of 8, about
390 s a checkpoint here), so the verified story proves a documented subset: the FIRST `test_rows` rows of the
world's test set, in chunks of `chunk_rows`. That subset is the registered test set: the baseline, every
group's gate and the owner's check are all on it.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from orchestrator.chain.client import MarketClient, TxResult
from orchestrator.commandline import lines_of
from orchestrator.hosting.node import NodeConfig
from orchestrator.hosting.owner_model import ProofCheck
from orchestrator.hosting.owner_proofs import chain_proof, check_chain_proof, terms_of
from orchestrator.hosting.proving import PROGRESS_TASK, default_zk_dir, setup_container, setup_dir
from orchestrator.hosting.registration import OwnerPackage, RegistrationTerms
from orchestrator.hosting.verified_registration import deploy_verifier, register_verified


@dataclass(frozen=True)
class VerifiedDemo:
    """How the verified story proves: the first `test_rows` test rows in chunks of `chunk_rows` (64 as 2 of 32:
    logrows 16, about a minute a chunk here), with the ceremony SRS `srs` (None: a local one, dev chains only)."""
    test_rows: int = 64
    chunk_rows: int = 32
    srs: Path | None = None

    @property
    def chunks(self) -> int:
        return -(-self.test_rows // self.chunk_rows)

    def proven_columns(self, columns: dict[str, list]) -> dict[str, list]:
        """The test set the verified story registers: the first `test_rows` rows of `columns`."""
        return {name: values[:self.test_rows] for name, values in columns.items()}

    def node_config(self, config: NodeConfig) -> NodeConfig:
        return replace(config, chunk_rows=self.chunk_rows, srs=self.srs)


@dataclass
class ProvingClock:
    """The node's progress (orchestrator/progress.py) in verified mode: logs each proven chunk with the seconds
    since the checkpoint's proving began, and keeps each checkpoint's proving seconds, in order."""
    log: Callable[[str], None]
    seconds: list[float] = field(default_factory=list)
    _started: float = 0.0

    def __call__(self, task: str, done: int, total: int) -> None:
        if task != PROGRESS_TASK:
            return
        now = time.monotonic()
        if done == 0:
            self._started = now
            self.log(f"   proving {total} chunks of the proven test set...")
            return
        self.log(f"   proof chunk {done} of {total}: {now - self._started:.0f} s")
        if done == total:
            self.seconds.append(now - self._started)


@dataclass(frozen=True)
class VerifiedRun:
    """What the verified story adds to the plain one's record."""
    demo: VerifiedDemo
    circuit: Path  # the model's circuit folder (public files: settings.json, vk.key, accuracy.onnx; and keys)
    srs: Path
    logrows: int
    setup_seconds: float
    verifier: str
    clock: ProvingClock


def register_in_verified_mode(owner: MarketClient, deployer: MarketClient, hosting_node: str, package: OwnerPackage,
                              demo: VerifiedDemo, db: Path, log: Callable[[str], None]
                              ) -> tuple[int, RegistrationTerms, TxResult, VerifiedRun]:
    """The hosting node sets up the package's circuit (as `host zk-setup`), `deployer` deploys the reusable
    verifier with its VKA, the owner registers in verified mode; the circuit is moved to where the node
    (state file `db`) looks for it once the model id is known."""
    log(f"== hosting node: zk setup of the model's circuit on the proven test set (the first {demo.test_rows} test "
        f"rows, {demo.chunks} chunks of {demo.chunk_rows})")
    staging = db.with_name("zk-staging")
    if staging.exists():
        shutil.rmtree(staging)  # an interrupted earlier demo's
    started = time.monotonic()
    with lines_of("orchestrator.zk", lambda line: log("   " + line)):  # the local SRS's warning among them
        setup = setup_container(staging / "model", package.container(0), demo.chunk_rows,
                                chain_id=owner.w3.eth.chain_id, srs=demo.srs)
    seconds = time.monotonic() - started
    zk = setup.registration
    log(f"   circuit set up in {seconds:.0f} s: logrows {setup.circuit.logrows}, VKA digest "
        f"0x{zk.vka_digest.hex()[:16]}..., test-set root 0x{zk.test_set_root.hex()[:16]}...")
    verifier = deploy_verifier(deployer, setup, staging)
    log(f"   ezkl's reusable verifier deployed at {verifier}, the circuit's VKA registered in it")
    model_id, terms, result = register_verified(owner, hosting_node, package, setup, verifier)
    folder = setup_dir(default_zk_dir(db), model_id)
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(setup.folder, folder)  # a local SRS is named relative to the folder, so it moves with it
    shutil.rmtree(staging)
    srs = demo.srs if demo.srs is not None else folder / setup.circuit.srs.name
    return model_id, terms, result, VerifiedRun(demo, folder, srs, setup.circuit.logrows, seconds, verifier,
                                                ProvingClock(log))


def owner_proof_check(owner: MarketClient, model_id: int, checkpoint_id: int, onnx_bytes: bytes,
                      run: VerifiedRun) -> ProofCheck:
    """What `owner verify --circuit DIR --srs FILE` checks: the close's proofs from its calldata, against the
    registered terms, the artifact and the owner's own test rows (docs/zk.md, "The owner's verify")."""
    terms, proof = terms_of(owner, model_id), chain_proof(owner, checkpoint_id)
    return lambda rows: check_chain_proof(proof, run.circuit, onnx_bytes, rows.features, rows.labels, terms, run.srs)
