"""Source proxies (claims 7, 8): an HTTP service holding data sources' rows, and its client.

  holder.RowHolder     what the hosting node asks of any row holder (proxy or direct source)
  vault.Vault          the logic: upload, listings, quote, evaluate, gradient (no HTTP)
  store.Store          the embedded SQLite database a vault keeps its rows, quotes and privacy state in
  privacy              the checks run on sub-models before computing (claim 6, and the model's privacy policy)
  safeguard            per model: the policy, the quoted rows' covariance, the leakage audit, the dp ledger
  budget               per row across every model: the span of everything released, in atoms (one budget)
  bills                for sources' audits: rows computed per checkpoint (hash, quoted price), bills received
  probes               how often and at which prices a quote may consult a row's minimum price
  intake, quoted       upload checks; quoted rows as matrices (what keeps evaluate/gradient loop-free)
  refusals             each refusal's protocol status and code
  schema, wire         the JSON documents (pydantic, OpenAPI) and their encoding (orjson, read by pydantic-core)
  service.create_app   the FastAPI app (docs/protocol.md)
  server               serve (foreground), running (background thread), proxy_process (child process)
  client.ProxyClient   the RowHolder over HTTP
  cli.main             `python -m orchestrator.proxy`; benchmark: `python -m orchestrator.proxy.benchmark`
"""
from orchestrator.lazy import lazy_exports

# Imported on first use: the proxy's client (what a hosting node or source needs) does not bring in its vault.
__getattr__, __dir__ = lazy_exports(__name__, {
    "client": ("ProxyClient", "UploadAnswer"),
    "holder": ("Accepted", "Declined", "LayerGradient", "Listing", "Outputs", "QuoteAnswer", "RowHolder"),
    "service": ("create_app",),
    "store": ("Store",),
    "vault": ("UploadResult", "Vault"),
})
