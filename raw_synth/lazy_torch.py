"""Keep torch out of numpy-only imports: recognise tensors and define torch classes on first use.

Much of raw-synth accepts a numpy array or a torch tensor and returns the same kind. A numpy-only
run (``raw-synth generate --engine upi``) must not pay for importing torch (about 1.5 s, plus its
clean-up at exit), so such modules import torch only for type checking and inside the branches
that work on tensors. :func:`is_tensor` tells the two kinds apart: a value can only be a tensor
if something has already imported torch, so it looks torch up in :data:`sys.modules` instead of
importing it. :func:`lazy_attribute` defers what needs torch at import time, such as a
``torch.nn.Module`` subclass, to the first access of its name.

Example:
    >>> import numpy as np
    >>> is_tensor(np.zeros(3))
    False
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    import torch
    from typing_extensions import TypeIs

__all__ = ["is_tensor", "lazy_attribute"]


def is_tensor(value: object) -> TypeIs[torch.Tensor]:
    """Whether ``value`` is a torch tensor, without importing torch.

    Args:
        value: Any object.

    Returns:
        ``isinstance(value, torch.Tensor)`` when torch has been imported, else ``False`` (no
        tensor can exist then): a plain bool, which type checkers also use to narrow ``value``
        as they do after ``isinstance``. torch is never imported by this call.
    """
    torch_module = sys.modules.get("torch")
    return torch_module is not None and isinstance(value, torch_module.Tensor)


def lazy_attribute(module: str, name: str, factories: Mapping[str, Callable[[], Any]]) -> Any:
    """The body of a module ``__getattr__`` (PEP 562) that makes some attributes on first access.

    A ``torch.nn.Module`` subclass needs torch at its ``class`` statement. A module that numpy
    callers import defines such a class inside a factory function instead, and adds::

        def __getattr__(name: str) -> Any:
            return lazy_attribute(__name__, name, {"Name": _define_name})

    The first access to ``module.Name`` (``from module import Name`` included) calls the factory
    and keeps the result in the module, so later accesses are plain attribute look-ups. A class
    that the factory defines (its ``__module__`` is ``module``) gets ``__qualname__`` ``Name``, as
    if it were defined at module level, so that pickle finds it. A package re-exports such a name
    the same way, with a factory that imports it from its module.

    Args:
        module: ``__name__`` of the module whose ``__getattr__`` this is.
        name: The attribute asked for.
        factories: Attribute name -> function without arguments that returns its value.

    Returns:
        The attribute's value.

    Raises:
        AttributeError: If ``name`` is not one of ``factories``.
    """
    factory = factories.get(name)
    if factory is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    value = factory()
    if isinstance(value, type) and value.__module__ == module:
        value.__qualname__ = name
    return vars(sys.modules[module]).setdefault(name, value)
