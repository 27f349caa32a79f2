"""The orchestrator's one exception hierarchy.

Everything the orchestrator refuses on purpose raises a subclass of `SplitLedgerError`, so a caller (the CLI,
an HTTP handler) can tell a refusal with a message meant for a person from a bug. Add new classes here rather
than raising ValueError from a module.
"""


class SplitLedgerError(Exception):
    """Base of every deliberate refusal in SplitLedger."""


class UsageError(SplitLedgerError):
    """Command-line options that do not go together or do not make sense (the caller's mistake, not the
    world's): a command line exits 2 for it, as for argparse's own usage errors (orchestrator/commandline.py)."""


class ModelFileError(SplitLedgerError):
    """A model file (or an imported ONNX graph) is malformed or inconsistent."""


class UnsupportedGraphError(ModelFileError):
    """An ONNX graph contains a node the MLP importer does not understand."""

    def __init__(self, message: str, *, node_name: str, op_type: str):
        super().__init__(message)
        self.node_name = node_name
        self.op_type = op_type


class FieldError(SplitLedgerError):
    """A standard field table, or a column mapping onto it, is malformed."""


class RowError(SplitLedgerError):
    """A data row holds a value that cannot be normalised; names the row index and the field."""

    def __init__(self, row: int, field: str, problem: str):
        super().__init__(f"row {row}, field {field!r}: {problem}")
        self.row = row
        self.field = field
        self.problem = problem


class SubModelError(SplitLedgerError):
    """A (serialised) sub-model is malformed or does not fit the model it is used with."""


class MerkleError(SplitLedgerError):
    """A Merkle tree cannot be built or queried as asked (no leaves, bad leaf size, index out of range)."""


class HistoryError(SplitLedgerError):
    """The history set was used out of order (nothing to anchor, unknown anchor, malformed row hash)."""


class ContainerError(SplitLedgerError):
    """A training container's parts do not fit together, or its backup point was used out of order."""


class WeightsMismatch(SplitLedgerError):
    """The weights a hosting node would train on are not the weights the chain says the model holds."""


class ChainError(SplitLedgerError):
    """The chain cannot be reached, a deployment or key is missing, or a transaction failed."""


class ChainRevert(ChainError):
    """A market call reverted; names the contract's custom error and its arguments."""

    def __init__(self, function: str, error: str, args: tuple = (), tx_hash: str | None = None):
        shown = ", ".join(_show_arg(a) for a in args)
        where = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"{function} reverted: {error}({shown}){where}")
        self.function = function
        self.error = error
        self.args_ = args
        self.tx_hash = tx_hash


def _show_arg(value) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


class StoreTooNew(SplitLedgerError):
    """A store file was written by a newer version of SplitLedger than this one (its schema version is above
    the code's); it is left as it is rather than read or changed by code that does not know its shape."""


class UploadRefused(SplitLedgerError):
    """A data source's upload to a row holder is malformed; nothing of it was stored. Names row and column."""

    def __init__(self, problem: str, *, row: int | None = None, column: str | None = None):
        parts = (f"row {row}" if row is not None else "", f"column {column!r}" if column else "")
        where = ", ".join(p for p in parts if p)
        super().__init__(f"{where}: {problem}" if where else problem)
        self.problem = problem
        self.row = row
        self.column = column


class HolderRequestError(SplitLedgerError):
    """A request to a row holder (quote, evaluate, gradient) is malformed: shapes, duplicates, non-finite numbers."""


class UnknownModel(SplitLedgerError):
    """A row holder was asked about a model it never accepted a quote for."""


class UnknownRows(SplitLedgerError):
    """A row holder was asked about row ids it never assigned."""

    def __init__(self, message: str, row_ids: tuple[int, ...]):
        super().__init__(message)
        self.row_ids = row_ids


class RowsNotQuoted(SplitLedgerError):
    """Rows exist at the holder but no accepted quote of this model covers them (or no sub-models were sent yet)."""

    def __init__(self, message: str, row_ids: tuple[int, ...] = ()):
        super().__init__(message)
        self.row_ids = row_ids


class PrivacyCheckFailed(SplitLedgerError):
    """A row holder refuses sub-models whose outputs would reveal an input (claims 5, 6, 8)."""

    def __init__(self, message: str, failures: tuple = ()):
        super().__init__(message)
        self.failures = failures


class ProxyError(SplitLedgerError):
    """A row holder (a proxy over HTTP, or a direct source) refused a request or answered badly.

    `code` is the protocol's error code (docs/protocol.md), or 'bad_answer' when the answer itself is malformed;
    `status` is the HTTP status, None where no HTTP status applies.
    """

    def __init__(self, url: str, status: int | None, code: str, detail: str):
        super().__init__(f"{url}: {code} ({status}): {detail}" if status is not None else f"{url}: {code}: {detail}")
        self.url = url
        self.status = status
        self.code = code
        self.detail = detail


class ProxyUnavailable(ProxyError):
    """A row holder could not be reached, timed out, or answered as a gateway in trouble (502/503/504)."""

    def __init__(self, url: str, detail: str, status: int | None = None):
        super().__init__(url, status, "unavailable", detail)


class PolicyError(SplitLedgerError):
    """A privacy policy document is malformed, or asks for a projection that would reveal an input."""


class Unauthorized(SplitLedgerError):
    """A request that must be signed is not, or its signature is malformed or expired.

    `code`: 'unsigned', 'bad_signature' or 'expired' (docs/protocol.md, "Authentication")."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Forbidden(SplitLedgerError):
    """A validly signed request from a signer that may not ask this: not the model's registered hosting
    node ('not_hosting_node'), or an upload not signed by the payout address it names ('not_source')."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Replayed(SplitLedgerError):
    """A signed request whose nonce this holder has already accepted once."""


class IdempotencyConflict(SplitLedgerError):
    """An upload reuses an idempotency key that an upload with another body was stored under."""


class BillConflict(SplitLedgerError):
    """A bill page that disagrees with the pages a holder stored for its checkpoint: another header or number of
    pages, or the same page with other rows."""


class ChainUnavailable(ChainError):
    """A holder cannot read the chain, so it cannot check who asks and serves no rows."""


class NoHolderReachable(SplitLedgerError):
    """No row holder of the hosting node answered at all: nothing can be bought, and that is not a finish."""


class QuoteChanged(SplitLedgerError):
    """The owner's quote is not the price a group's rows were sold at (it changed between the quote and the open):
    the group is not trained, and its rows are quoted again at the new price."""

    def __init__(self, message: str, *, sold_at: int | None, quote: int):
        super().__init__(message)
        self.sold_at = sold_at
        self.quote = quote


class ArtifactError(SplitLedgerError):
    """A model artifact (ONNX export, model file) is missing, malformed, or not the one the chain committed to."""


class AccuracyMismatch(ArtifactError):
    """An independent evaluation of a checkpoint's artifact does not reproduce the accuracy recorded on chain."""

    def __init__(self, checkpoint_id: int, measured_ppm: int, on_chain_ppm: int, detail: str = "", *,
                 measured_by: str = "onnxruntime measures"):
        super().__init__(f"checkpoint {checkpoint_id}: {measured_by} {measured_ppm} ppm on the test set"
                         f"{detail}, but the chain records accuracyAfter {on_chain_ppm} ppm")
        self.checkpoint_id = checkpoint_id
        self.measured_ppm = measured_ppm
        self.on_chain_ppm = on_chain_ppm


class UnknownArtifact(ArtifactError):
    """No artifact to serve: the checkpoint does not exist or is another model's ('unknown_checkpoint'), or the
    hosting node has written none for it ('no_artifact')."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class ZkError(SplitLedgerError):
    """An accuracy proof cannot be built, proven or checked: a graph the circuit cannot express, a test-set chunk
    of the wrong shape, a proving step ezkl refused, or a proof that does not verify (docs/zk.md)."""


class ProveTimeout(ZkError):
    """ezkl's prove of a chunk ran past its time limit and its child process was killed (ezkl 23.0.5's prove can
    hang with every thread waiting: docs/zk.md, "Keys and zero parameters"). Nothing was proven; `seconds` is the
    limit it ran past."""

    def __init__(self, message: str, seconds: float):
        self.seconds = seconds
        super().__init__(message)


class ProofMismatch(ZkError):
    """A checkpoint's stored accuracy proofs do not prove what the owner checks them for: a proof that does not
    verify, chunk commitments outside the registered test-set root, or a weights commitment other than the
    artifact's. `what` names the part that disagrees; `chunk` the chunk, when one does."""

    def __init__(self, what: str, message: str, chunk: int | None = None):
        self.what, self.chunk = what, chunk
        super().__init__(message)
