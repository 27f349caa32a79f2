"""The optimisers a model file may name (docs/model-format.md): for each, the hyper-parameters it requires and
those it also accepts. Apart from modelfile.py, which builds them with optax, so that a command line can offer
the names without loading JAX."""
OPTIMIZERS = {
    "sgd": ({"learning_rate"}, {"momentum"}),
    "adam": ({"learning_rate"}, set()),
    "adamw": ({"learning_rate"}, {"weight_decay"}),
}
