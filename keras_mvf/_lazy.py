"""Lazy package exports (PEP 562): a package's names are imported on first use.

Importing `keras_mvf` or one of its packages stays cheap (no Keras, TensorFlow or
OpenCV), so `keras-mvf --help` answers at once. A name's module is imported when
the name is first looked up; `dir()`, `__all__` and star imports see every name,
and submodules are attributes of their package, as if it imported them all.
"""

import importlib
import sys


def lazy_exports(package, exports, submodules=()):
    """`__getattr__`, `__dir__` and `__all__` for a package that exports names lazily.

    Args:
        package: the package's `__name__`.
        exports: maps a module, relative to the package (`".resnet"`), to the
            names the package exports from it.
        submodules: submodules that are public names of the package (`"layers"`).
    """
    origins = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name):
        if name in origins:
            value = getattr(importlib.import_module(origins[name], package), name)
            setattr(sys.modules[package], name, value)  # found without `__getattr__` from now on
            return value
        try:
            return importlib.import_module(f".{name}", package)
        except ModuleNotFoundError as error:
            if error.name != f"{package}.{name}":
                raise  # the submodule exists but needs a missing module
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(origins) | set(submodules))

    return __getattr__, __dir__, sorted([*origins, *submodules])
