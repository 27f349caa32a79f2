"""The orchestrator's one exception hierarchy.

Everything the orchestrator refuses on purpose raises a subclass of `SplitLedgerError`, so a caller (the CLI,
an HTTP handler) can tell a refusal with a message meant for a person from a bug. Add new classes here rather
than raising ValueError from a module.
"""


class SplitLedgerError(Exception):
    """Base of every deliberate refusal in SplitLedger."""


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
