"""Which protocol error (HTTP status, code) each refusal of a row holder is (docs/protocol.md, "Errors").

Shared by the web service, which answers with it, and by direct sources, which raise the same `ProxyError` a
`ProxyClient` would, so the hosting node handles both kinds of holder alike.
"""
from orchestrator.errors import (
    BillConflict,
    ChainUnavailable,
    FieldError,
    Forbidden,
    HolderRequestError,
    IdempotencyConflict,
    PolicyError,
    PrivacyCheckFailed,
    ProxyError,
    Replayed,
    RowError,
    RowsNotQuoted,
    SplitLedgerError,
    SubModelError,
    Unauthorized,
    UnknownModel,
    UnknownRows,
    UploadRefused,
)

# Most specific first: the first class an exception is an instance of decides.
# Unauthorized and Forbidden carry their own code (unsigned, expired, not_hosting_node, ...).
REFUSALS: tuple[tuple[type[SplitLedgerError], int, str], ...] = (
    (Unauthorized, 401, "unsigned"),
    (Forbidden, 403, "forbidden"),
    (Replayed, 409, "replayed"),
    (IdempotencyConflict, 409, "idempotency_conflict"),
    (BillConflict, 409, "bill_conflict"),
    (ChainUnavailable, 503, "chain_unavailable"),
    (PrivacyCheckFailed, 422, "privacy_check_failed"),
    (PolicyError, 422, "invalid_policy"),
    (UploadRefused, 422, "invalid_upload"),
    (FieldError, 422, "invalid_field_table"),
    (SubModelError, 422, "invalid_submodels"),
    (RowError, 422, "invalid_value"),
    (HolderRequestError, 422, "invalid_request"),
    (UnknownModel, 404, "unknown_model"),
    (UnknownRows, 404, "unknown_rows"),
    (RowsNotQuoted, 409, "rows_not_quoted"),
    (SplitLedgerError, 422, "refused"),
)


def refusal(error: SplitLedgerError) -> tuple[int, str]:
    """(HTTP status, protocol error code) of a deliberate refusal."""
    for kind, status, code in REFUSALS:
        if isinstance(error, kind):
            return status, getattr(error, "code", code)
    raise TypeError(f"{error!r} is not a SplitLedgerError")


def as_proxy_error(url: str, error: SplitLedgerError) -> ProxyError:
    """The refusal as the hosting node sees it from any holder."""
    if isinstance(error, ProxyError):
        return error
    status, code = refusal(error)
    return ProxyError(url, status, code, str(error))
