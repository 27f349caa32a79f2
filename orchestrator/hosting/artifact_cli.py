"""The command lines of the model artifact: `host serve`, `owner fetch-model`, `owner verify` (docs/artifacts.md).

Registered on the host and owner parsers of cli.py. Exit status (orchestrator/commandline.py): 0 when done
(verify: the figures agree), 1 when refused, an artifact failing a check among them (a hash or the accuracy
does not match the chain), 2 for a usage error.
"""
import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.chain.deployment import load_deployment
from orchestrator.commandline import add_key_option, signing_account
from orchestrator.errors import SplitLedgerError, UsageError
from orchestrator.proxy.tls import ServerTLS

if TYPE_CHECKING:
    from .owner_model import ProofCheck

# What serves and checks models (web3, uvicorn, onnx, onnxruntime, JAX) is imported by the command that runs:
# building the parsers, for --help or any other command, needs none of it.

ChainArguments = Callable[[argparse.ArgumentParser], None]


def add_artifacts_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifacts-dir", type=Path,
                        help="where each closed checkpoint's checkpoint-N.onnx and checkpoint-N.model.json are "
                             "written (default: beside --db, host.sqlite -> host.artifacts/)")


def add_serve_command(commands, chain_arguments: ChainArguments) -> None:
    serve_parser = commands.add_parser("serve", help="serve closed checkpoints' models to the model's owner (HTTP; "
                                                     "no key)")
    serve_parser.set_defaults(handler=serve_command, service=True)
    chain_arguments(serve_parser)
    serve_parser.add_argument("--db", required=True, type=Path,
                              help="the hosting node's state file (keeps the nonces of admitted requests)")
    add_artifacts_dir_option(serve_parser)
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve_parser.add_argument("--port", required=True, type=int, help="port to listen on")
    serve_parser.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain) to serve https with")
    serve_parser.add_argument("--tls-key", metavar="FILE", help="PEM private key of that certificate")


def serve_command(args) -> int:
    from orchestrator.chain.client import MarketClient, connect
    from orchestrator.proxy.server import serve

    from .artifact_gate import OwnerGate
    from .artifact_service import create_app
    from .artifacts import default_artifacts_dir
    from .nonces import NonceStore
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together: give both or neither")
    tls = ServerTLS(args.tls_cert, args.tls_key) if args.tls_cert else None
    chain = MarketClient(connect(args.rpc), load_deployment(args.deployment))  # reads only: no key
    app = create_app(args.artifacts_dir or default_artifacts_dir(args.db), OwnerGate(chain, NonceStore(args.db)))
    serve(app, args.host, args.port, log_level=args.log_level, tls=tls)
    return 0


def add_owner_commands(commands, chain_arguments: ChainArguments) -> None:
    fetch = commands.add_parser("fetch-model", help="download a checkpoint's model from the hosting node and "
                                                    "check its weights against the chain")
    fetch.set_defaults(handler=fetch_model_command)
    chain_arguments(fetch)
    add_key_option(fetch, "owner")
    fetch.add_argument("--host-url", required=True, metavar="URL", help="the hosting node's `host serve` address")
    fetch.add_argument("--model-id", required=True, type=int)
    fetch.add_argument("--checkpoint", type=int, help="checkpoint id (default: the model's latest settled one)")
    fetch.add_argument("--out", required=True, type=Path, metavar="DIR", help="where to write the files")
    fetch.add_argument("--ca-bundle", metavar="FILE", help="PEM CA certificates an https host must verify against")
    verify = commands.add_parser("verify", help="re-evaluate a checkpoint's ONNX model with onnxruntime and compare "
                                                "with the accuracy on chain (no key)")
    verify.set_defaults(handler=verify_command)
    chain_arguments(verify)
    verify.add_argument("--model-id", required=True, type=int)
    verify.add_argument("--checkpoint", required=True, type=int)
    verify.add_argument("--onnx", required=True, type=Path, help="the checkpoint's checkpoint-N.onnx")
    verify.add_argument("--fields", required=True, type=Path, help="the standard field table you registered")
    verify.add_argument("--test-set", required=True, type=Path, help="the test set you registered")
    verify.add_argument("--model", type=Path, help="the model file you registered (needed for a regression task)")
    proofs = verify.add_argument_group(
        "a verified model's accuracy proofs (docs/zk.md, \"The owner's verify\")",
        "For a model registered in verified mode the proofs the chain accepted are read from the checkpoint's "
        "settle or rollback transaction and checked against the registered terms, the ONNX file's weights and "
        "the test set given; --circuit and --srs are then required.")
    proofs.add_argument("--circuit", type=Path, metavar="DIR",
                        help="the model's circuit: a folder with its settings.json, vk.key and accuracy.onnx "
                             "(host zk-setup's host.zk/model-<id>/, or any checkpoint's proofs folder); public, and "
                             "refused unless its verifying key has the registered VKA digest")
    proofs.add_argument("--proofs", type=Path, metavar="DIR",
                        help="check the proofs in this folder (checkpoint-N.zk/, from the hosting node) instead of "
                             "the ones on chain; its own settings.json and vk.key serve as the circuit")
    add_srs_option(proofs)


def fetch_model_command(args: argparse.Namespace) -> int:
    from orchestrator.chain.client import MarketClient, connect

    from .owner_model import fetch_model
    # signed: the hosting node serves a model to its owner only
    chain = MarketClient(connect(args.rpc), load_deployment(args.deployment), signing_account(args, "owner"))
    fetched = fetch_model(chain, args.host_url, args.model_id, args.checkpoint, args.out, ca_bundle=args.ca_bundle)
    print(f"checkpoint {fetched.checkpoint_id} ({fetched.state}): weights 0x{fetched.weights_hash.hex()} "
          f"match the chain; wrote {fetched.onnx_file} and {fetched.model_file}")
    return 0


def add_srs_option(parser) -> None:
    parser.add_argument("--srs", type=Path, metavar="FILE",
                        help="the KZG structured reference string, a ceremony file (perpetual powers of tau, at "
                             "least the circuit's logrows; docs/zk.md, \"SRS\"). Required off dev chains; on a dev "
                             "chain (31337, 1337) the hosting node may generate one, loudly")


def verify_command(args: argparse.Namespace) -> int:
    from orchestrator.chain.client import MarketClient, connect

    from .owner_model import verify_checkpoint
    chain = MarketClient(connect(args.rpc), load_deployment(args.deployment))
    onnx_bytes = _read(args.onnx)
    result = verify_checkpoint(chain, args.model_id, args.checkpoint, onnx_bytes, _read(args.fields),
                               _read(args.test_set), _read(args.model) if args.model else None,
                               _proof_check(args, chain, onnx_bytes))
    measured = (f"onnxruntime measures {result.evaluation.accuracy_ppm} ppm ({result.evaluation.hits} of "
                f"{result.evaluation.rows} rows)")
    if result.proven is None:
        print(f"verified: checkpoint {result.checkpoint_id} ({result.state}): {measured}, as the chain records")
    else:
        print(f"verified: checkpoint {result.checkpoint_id} ({result.state}): its {result.proven.chunks} proofs "
              f"prove {result.proven.accuracy_ppm} ppm ({result.proven.correct} of {result.proven.rows} rows) for "
              f"these weights, as the chain records; {measured} in floating point")
    return 0


def _proof_check(args: argparse.Namespace, chain, onnx_bytes: bytes) -> "ProofCheck | None":
    """A verified model's proof check for verify_checkpoint, from the chain's terms and the close's calldata
    (or --proofs DIR); None for a plain model, which has no proofs to give options for."""
    given = [name for name in ("circuit", "proofs", "srs") if getattr(args, name) is not None]
    if not chain.is_verified(args.model_id):
        if given:
            raise UsageError(f"model {args.model_id} is not registered in verified mode: "
                             f"{', '.join('--' + name for name in given)} check a verified model's proofs")
        return None
    if args.srs is None or (args.circuit is None and args.proofs is None):
        raise UsageError(f"model {args.model_id} is verified: give --srs FILE (the SRS you trust) and --circuit DIR "
                         f"(the model's settings.json, vk.key and accuracy.onnx), or --proofs DIR")
    from .owner_proofs import chain_proof, check_chain_proof, check_proofs, terms_of
    terms = terms_of(chain, args.model_id)
    if args.proofs is not None:
        folder = args.proofs
        return lambda rows: check_proofs(folder, onnx_bytes, terms, args.srs)
    # read before any test row is evaluated: a checkpoint closed without a proof is refused at once
    proof = chain_proof(chain, args.checkpoint)
    return lambda rows: check_chain_proof(proof, args.circuit, onnx_bytes, rows.features, rows.labels, terms,
                                          args.srs)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise SplitLedgerError(f"cannot read {path}: {e}") from None
