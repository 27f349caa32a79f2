"""Privacy of the rows against the hosting node: what it can reconstruct, and the exchanges that stop it.

  span        subspaces of the model inputs, unit-vector distances, R^2 of the best linear reconstruction
  attack      the host's best linear reconstruction attack on its recorded view; per-input R^2
  audit       the cumulative leakage audit a row holder runs per row (one basis per revelation history)
  atoms       coordinates of the raw values common to every model's field table (the cross-model budget's)
  projection  the projection exchange: W1 = A P with P fixed and public; u = P x is all a source reveals
  dp          clipped, noised layer-1 gradients (the gradient channel of the plain exchange)
  accountant  RDP accounting of the sampled Gaussian mechanism; budgets and per-row ledgers
  policy      the privacy policy document in the model registration, and the source's per-request checks
  projected   the hosting node's training container in projection and ldp modes (model_u over u = P x)
  simulate    in-process split training under each exchange, recording the host's view (tests, benchmark)

Threat model and settings: docs/privacy.md.
"""
