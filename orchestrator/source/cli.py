"""`python -m orchestrator.source` (or `splitledger source`): a data source's command line."""
import argparse
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from orchestrator.auth.messages import Domain
from orchestrator.auth.signing import RequestSigner
from orchestrator.chain.deployment import load_deployment
from orchestrator.commandline import CommandParser, add_key_option, progress_bars, signing_account, standalone
from orchestrator.commandline import main as run_command
from orchestrator.errors import SplitLedgerError, UploadRefused

from .rows import mapping_from_args, mapping_from_json, read_csv_columns
from .upload import hand_rows

DESCRIPTION = """A SplitLedger data source: hand your rows to source proxies, which list them (row id and field
composition only) and sell them to models whose quote meets your minimum price, paying your address."""

HASH_KEY_ENV = "SPLITLEDGER_SOURCE_HASH_KEY"

UPLOAD_EPILOG = """The upload is signed with the key of your payout address (SPLITLEDGER_SOURCE_KEY, or
SPLITLEDGER_SOURCE_KEYSTORE + _PASSWORD, or --keystore FILE): a proxy stores rows only for the address that
signed them.
Every column of the CSV must be mapped to a standard field (--map) or ignored (--ignore);
the standard names are those of the model's field table. Cells: integers and decimals are numbers, empty
cells are missing values, any other text is a category (--text keeps a column's cells as text). The rows are
checked before any proxy is contacted.

example:
  SPLITLEDGER_SOURCE_KEY=0x... python -m orchestrator.source upload --proxy http://127.0.0.1:8701 \\
      --proxy http://127.0.0.1:8702 --min-price 5000000000000000 \\
      --csv clinic.csv --map "Radius (mean)=mean_radius" --map Outcome=diagnosis --ignore PatientId
"""


def configure(parser: CommandParser) -> None:
    parser.description = DESCRIPTION
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    upload = commands.add_parser(
        "upload", help="hand rows from a CSV file to one or more proxies", description=UPLOAD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upload.set_defaults(handler=upload_command)
    add_key_option(upload, "source")
    upload.add_argument("--proxy", action="append", required=True, metavar="URL",
                        help="a proxy's base URL; repeat to hand the same rows to several (redundancy)")
    upload.add_argument("--source", metavar="ADDRESS",
                        help="your payout address (0x...); it must be the address of the key you sign with "
                             "(SPLITLEDGER_SOURCE_KEY, or SPLITLEDGER_SOURCE_KEYSTORE + _PASSWORD), which is "
                             "the default")
    upload.add_argument("--deployment", default="deployments/development.json", type=Path,
                        help="deployment file: the chain and market your upload is signed for (default: %(default)s)")
    upload.add_argument("--min-price", required=True, type=int, metavar="AMOUNT",
                        help="lowest price per row you accept, in the token's smallest unit; never published")
    upload.add_argument("--csv", required=True, type=Path, metavar="FILE", help="the rows, with a header line")
    upload.add_argument("--map", action="append", default=[], metavar="COLUMN=STANDARD",
                        help="map one of your columns to a standard field name; repeat per column")
    upload.add_argument("--ignore", action="append", default=[], metavar="COLUMN",
                        help="one of your columns not to hand over (e.g. an internal id); repeat per column")
    upload.add_argument("--text", action="append", default=[], metavar="COLUMN",
                        help="keep this column's cells as text even where they look like numbers (categories)")
    upload.add_argument("--mapping-file", type=Path, metavar="JSON",
                        help='mapping as {"mapping": {column: standard}, "ignored": [column]}, '
                             'with or instead of --map')
    upload.add_argument("--hash-key-file", type=Path, metavar="FILE",
                        help=f"your secret row-hash key (64 hex digits; see the hash-key command), the same for "
                             f"every proxy you use, so your rows' hashes cannot be guessed (docs/privacy.md); or "
                             f"set {HASH_KEY_ENV}. Without either, row hashes are unkeyed")
    upload.add_argument("--upload-key", metavar="HEX",
                        help="resume an interrupted upload of the same CSV: the key its error message printed "
                             "(pages a proxy stored before are not stored again; docs/proxy.md, 'Uploads in pages')")
    upload.add_argument("--json", action="store_true", help="print the row ids per proxy as JSON")
    upload.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each proxy")
    upload.add_argument("--ca-bundle", metavar="FILE",
                        help="PEM file of the CA certificates https proxies must verify against (default: the "
                             "system's trust store)")
    key = commands.add_parser("hash-key", help="make a new secret row-hash key file",
                              description="Writes 32 random bytes as hex to FILE (readable by you only). Give the "
                                          "same file to every upload, to every proxy: a key per source, not per proxy.")
    key.add_argument("--out", required=True, type=Path, metavar="FILE")
    key.set_defaults(handler=hash_key_command)
    claim = commands.add_parser(
        "claim", help="withdraw your payout from a settled checkpoint's published bill",
        description="Claims the payout of the address of SPLITLEDGER_SOURCE_KEY (or SPLITLEDGER_SOURCE_KEYSTORE + "
                    "_PASSWORD, or --keystore) from the bills the hosting node published (its --bills-dir); payouts "
                    "already claimed are skipped.")
    claim.set_defaults(handler=claim_command)
    add_key_option(claim, "source")
    bills = claim.add_mutually_exclusive_group(required=True)
    bills.add_argument("--bill", action="append", type=Path, metavar="FILE",
                       help="a published bill (JSON); repeat for several")
    bills.add_argument("--bills-dir", type=Path, metavar="DIR",
                       help="every bill the hosting node published there (its --bills-dir): claims each unclaimed "
                            "payout of yours in one transaction")
    claim.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC endpoint (default: %(default)s)")
    claim.add_argument("--deployment", default="deployments/development.json", type=Path,
                       help="deployment file (default: %(default)s)")
    audit = commands.add_parser(
        "audit", help="check your bills: every row of yours used is billed at its quoted price and paid",
        description=AUDIT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    audit.set_defaults(handler=audit_command)
    add_key_option(audit, "source")
    audit.add_argument("--proxy", action="append", required=True, metavar="URL",
                       help="a proxy holding your rows; repeat for each")
    audit.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC endpoint (default: %(default)s)")
    audit.add_argument("--deployment", default="deployments/development.json", type=Path,
                       help="deployment file (default: %(default)s)")
    audit.add_argument("--json", action="store_true", help="print the whole report, with evidence, as JSON")
    audit.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each proxy")
    audit.add_argument("--ca-bundle", metavar="FILE",
                       help="PEM file of the CA certificates https proxies must verify against")


def build_parser(prog: str = "python -m orchestrator.source") -> CommandParser:
    return standalone(prog, configure)


AUDIT_DESCRIPTION = """Fetches, signed with the key of your payout address (SPLITLEDGER_SOURCE_KEY, or
SPLITLEDGER_SOURCE_KEYSTORE + _PASSWORD, or --keystore FILE), the bills the hosting node published to your
proxies and the proxies'
records of which of your rows they computed for which checkpoint, and checks them against the chain:
(a) every row of yours computed for a checkpoint and not listed as dropped is in its bill, (b) at the price
it was quoted at, (c) your payout leaf is the sum of your rows and its proof verifies against the chain's
payoutRoot, (d) the bill's leaves sum to the chain's billTotal and its rows hash to the chain's rowsRoot.
Exit status: 0 when everything checks, 3 when a discrepancy is found (each printed with its evidence under
--json), 1 when the audit could not be done, 2 for a usage error (docs/audit.md)."""

DISCREPANCY_EXIT = 3


def audit_command(args: argparse.Namespace) -> int:
    from orchestrator.chain.client import MarketClient, connect
    from orchestrator.proxy.client import ProxyClient

    from .audit import audit_source

    chain = MarketClient(connect(args.rpc), load_deployment(args.deployment))
    signer = RequestSigner(signing_account(args, "source"), chain.domain())
    proxies = [ProxyClient(url, timeout=args.timeout, ca_bundle=args.ca_bundle) for url in args.proxy]
    try:
        report = audit_source(signer, proxies, chain)
    finally:
        for proxy in proxies:
            proxy.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        for verdict in report.checkpoints:
            print(f"checkpoint {verdict.checkpoint_id}: {verdict.state}, {verdict.rows_computed} rows computed, "
                  f"{verdict.rows_billed} billed, {verdict.owed} owed"
                  f"{'' if not verdict.discrepancies else f', {len(verdict.discrepancies)} discrepancies'}")
        for d in report.discrepancies:
            where = "" if d.checkpoint_id is None else f"checkpoint {d.checkpoint_id}: "
            print(f"  DISCREPANCY {where}{d.kind}: {d.detail}")
        print("audit passed" if report.ok else "audit FAILED (run with --json for the evidence)")
    return 0 if report.ok else DISCREPANCY_EXIT


def claim_command(args: argparse.Namespace) -> int:
    # web3 is imported here: uploading rows needs only a key and the deployment's chain id and market.
    from orchestrator.chain.client import MarketClient, connect

    from .claims import bill_files, payouts_of, read_bills

    client = MarketClient(connect(args.rpc), load_deployment(args.deployment), signing_account(args, "source"))
    bills = read_bills(args.bill if args.bill else bill_files(args.bills_dir))
    mine = payouts_of(bills, client.address)
    if not mine:
        shown = ", ".join(str(b.get("checkpoint_id")) for b in bills)
        raise SplitLedgerError(f"the bills of checkpoints {shown} pay nothing to {client.address}")
    open_ = [p for p in mine if not client.is_claimed(p.checkpoint_id, client.address)]
    for payout in mine:
        if payout not in open_:
            print(f"checkpoint {payout.checkpoint_id}: {payout.amount} already claimed")
    if not open_:
        return 0
    if len(open_) == 1:
        result = client.claim(open_[0].checkpoint_id, open_[0].amount, open_[0].proof)
    else:
        result = client.claim_many([p.checkpoint_id for p in open_], [p.amount for p in open_],
                                   [p.proof for p in open_])
    for payout in open_:
        print(f"claimed {payout.amount} from checkpoint {payout.checkpoint_id} (tx {result.tx_hash})")
    return 0


def hash_key_command(args: argparse.Namespace) -> int:
    if args.out.exists():
        raise SplitLedgerError(f"{args.out} exists; a key is never overwritten (rows hashed with it would no "
                               f"longer match)")
    descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_bytes(32).hex() + "\n")
    print(f"row-hash key written to {args.out}")
    return 0


def read_hash_key(path: Path | None) -> bytes | None:
    """The key from --hash-key-file, else from the environment, else None (unkeyed): hex, 0x optional."""
    text = path.read_text() if path is not None else os.environ.get(HASH_KEY_ENV)
    if text is None:
        return None
    text = text.strip().removeprefix("0x")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SplitLedgerError(f"a row-hash key is 64 hex digits (32 bytes); {path or HASH_KEY_ENV} holds something "
                               f"else")
    return key


def read_upload_key(text: str | None) -> bytes:
    """--upload-key (64 hex digits, 0x optional), or a new random key for a new upload."""
    if text is None:
        return secrets.token_bytes(32)
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SplitLedgerError("--upload-key is 64 hex digits (32 bytes), as printed by the upload it resumes")
    return key


def upload_command(args: argparse.Namespace) -> int:
    columns: dict[str, str] = {}
    ignored = set(args.ignore)
    if args.mapping_file:
        from_file = mapping_from_json(args.mapping_file.read_text())
        columns.update(from_file.columns)
        ignored |= from_file.ignored
    from_args = mapping_from_args(args.map)
    columns.update(from_args.columns)
    if not columns:
        raise SplitLedgerError("map at least one column with --map or --mapping-file")
    rows = read_csv_columns(args.csv, args.text)
    account = signing_account(args, "source")
    if args.source is not None and args.source.lower() != account.address.lower():
        raise SplitLedgerError(f"--source {args.source} is not the address of the signing key ({account.address}): "
                               f"a proxy stores rows only for the address that signed them")
    deployment = load_deployment(args.deployment)
    signer = RequestSigner(account, Domain(deployment.chain_id, deployment.market))
    upload_key = read_upload_key(args.upload_key)
    bars = progress_bars(args)
    try:
        handed = hand_rows(args.proxy, signer, args.min_price, columns, ignored=sorted(ignored), columns=rows,
                           timeout=args.timeout, hash_key=read_hash_key(args.hash_key_file), ca_bundle=args.ca_bundle,
                           upload_key=upload_key,
                           progress=None if bars is None else lambda url, done, total: bars(f"pages to {url}", done,
                                                                                              total))
    except SplitLedgerError as e:
        if isinstance(e, UploadRefused):  # refused before any proxy was asked: nothing to resume
            raise
        raise SplitLedgerError(f"{e}\nto resume without storing any page twice, run the same command again with "
                               f"--upload-key 0x{upload_key.hex()}") from None
    finally:
        if bars is not None:
            bars.close()
    if args.json:
        print(json.dumps(handed))
    else:
        for url, ids in handed.items():
            shown = f"row ids {ids[0]}..{ids[-1]}" if ids == list(range(ids[0], ids[-1] + 1)) else f"row ids {ids}"
            print(f"{url}: {len(ids)} rows stored, {shown}")
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m orchestrator.source") -> int:
    return run_command(build_parser(prog), argv)
