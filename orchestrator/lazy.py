"""Lazy package attributes (PEP 562): a package names what it offers without importing it, so that importing
one of its modules does not import all of its siblings (the explorer needs a Merkle proof, not JAX)."""
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]) -> tuple[Callable[[str], object],
                                                                             Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose attribute `name` is imported from its submodule `module`
    on first use, for each `module: names` of `exports`."""
    where = {name: module for module, names in exports.items() for name in names}
    # Importing submodule `split` sets the package's attribute `split` to the module, which would then shadow a
    # lazily exported function `split`: such a name is imported from its submodule instead.
    clashes = sorted(set(where) & set(exports))
    if clashes:
        raise ValueError(f"{package} cannot export {clashes} lazily: they also name its submodules")

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later reads are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(where) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
