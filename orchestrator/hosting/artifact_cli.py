"""The command lines of the model artifact: `host serve`, `owner fetch-model`, `owner verify` (docs/artifacts.md).

Registered on the host and owner parsers of cli.py. Exit status (orchestrator/commandline.py): 0 when done
(verify: the figures agree), 1 when refused, an artifact failing a check among them (a hash or the accuracy
does not match the chain), 2 for a usage error.
"""
import argparse
from collections.abc import Callable
from pathlib import Path

from orchestrator.chain.deployment import load_deployment
from orchestrator.commandline import add_key_option, signing_account
from orchestrator.errors import SplitLedgerError, UsageError
from orchestrator.proxy.tls import ServerTLS

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
    proofs = verify.add_argument_group("a verified model's accuracy proofs (docs/zk.md, \"The owner's verify\")")
    proofs.add_argument("--proofs", type=Path, metavar="DIR",
                        help="the checkpoint's proofs folder (checkpoint-N.zk/): check every chunk's proof, its "
                             "test-set commitments and its weights against this ONNX file, then compare the chain's "
                             "accuracy with the proven one")
    proofs.add_argument("--zk-root", type=_word, metavar="HEX",
                        help="the test-set chunk root the model registered (testSetZkRoot); needed with --proofs")
    proofs.add_argument("--vka-digest", type=_word, metavar="HEX",
                        help="the verifying-key artifact digest the model registered: the proofs' key must have it")
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
    if args.proofs is not None and (args.zk_root is None or args.srs is None):
        raise UsageError("--proofs needs --zk-root (the registered test-set root) and --srs (the ceremony SRS, or "
                         "on a dev chain the hosting node's local one)")
    if args.proofs is None and (args.zk_root or args.vka_digest or args.srs):
        raise UsageError("--zk-root, --vka-digest and --srs check a checkpoint's proofs: give --proofs DIR too")
    chain = MarketClient(connect(args.rpc), load_deployment(args.deployment))
    onnx_bytes = _read(args.onnx)
    proven = None
    if args.proofs is not None:
        from .owner_proofs import ProvenTerms, check_proofs
        # the proofs first: offline evidence, refused before any figure of the chain is compared
        proven = check_proofs(args.proofs, onnx_bytes, ProvenTerms(args.zk_root, args.vka_digest), args.srs)
    result = verify_checkpoint(chain, args.model_id, args.checkpoint, onnx_bytes, _read(args.fields),
                               _read(args.test_set), _read(args.model) if args.model else None, proven)
    measured = (f"onnxruntime measures {result.evaluation.accuracy_ppm} ppm ({result.evaluation.hits} of "
                f"{result.evaluation.rows} rows)")
    if result.proven is None:
        print(f"verified: checkpoint {result.checkpoint_id} ({result.state}): {measured}, as the chain records")
    else:
        print(f"verified: checkpoint {result.checkpoint_id} ({result.state}): its {result.proven.chunks} proofs "
              f"prove {result.proven.accuracy_ppm} ppm ({result.proven.correct} of {result.proven.rows} rows) for "
              f"these weights, as the chain records; {measured} in floating point")
    return 0


def _word(text: str) -> bytes:
    try:
        value = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        value = b""
    if len(value) != 32:
        raise argparse.ArgumentTypeError(f"a 32-byte hex word (0x + 64 hex digits), not {text!r}")
    return value


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise SplitLedgerError(f"cannot read {path}: {e}") from None
