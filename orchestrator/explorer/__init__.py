"""The protocol explorer: a read-only web app that rebuilds the market's story from the chain alone.

`indexer` copies the market's event logs into an SQLite cache, `ledger` folds them into models,
checkpoints, payouts and anchors, `queries` reads that cache, `views` turns rows into page models and
`app` serves them. See docs/explorer.md.
"""
