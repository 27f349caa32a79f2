"""Independent checks of a model artifact: onnxruntime and numpy only, no JAX and nothing of the container,
so an owner's verification shares no arithmetic with the hosting node that trained the model (docs/artifacts.md)."""
