"""`splitledger`: one command for every role. Each subcommand is the role's own command line."""
import sys
from collections.abc import Sequence

USAGE = """usage: splitledger ROLE ...

roles:
  deploy     deploy the market onto the chain at --rpc (any port)       (splitledger deploy --help)
  owner      fit a field table, import ONNX, register a model, escrow,
             set the quote, withdraw                                    (splitledger owner --help)
  host       run a hosting node for a registered model                  (splitledger host --help)
  proxy      run a source proxy (HTTP service holding sources' rows)    (splitledger proxy --help)
  source     hand rows to proxies, audit bills, claim payouts           (splitledger source --help)
  explorer   browse models, checkpoints, bills, payouts and anchors     (splitledger explorer --help)
  example    write a worked example's input files from a bundled dataset (splitledger example --help)
"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    role, rest = argv[0], argv[1:]
    # Imported on demand: each role pulls in only what it needs (the explorer needs no JAX, for example).
    if role == "deploy":
        from orchestrator.chain.cli import main as deploy_main
        return deploy_main(rest)
    if role == "owner":
        from orchestrator.hosting.cli import owner_main
        return owner_main(rest)
    if role == "host":
        from orchestrator.hosting.cli import host_main
        return host_main(rest)
    if role == "proxy":
        from orchestrator.proxy.cli import main as proxy_main
        return proxy_main(rest, prog="splitledger proxy")
    if role == "source":
        from orchestrator.source.cli import main as source_main
        return source_main(rest, prog="splitledger source")
    if role == "explorer":
        from orchestrator.explorer.cli import main as explorer_main
        return explorer_main(rest)
    if role == "example":
        from orchestrator.examples.cli import main as example_main
        return example_main(rest)
    print(f"splitledger: unknown role {role!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
