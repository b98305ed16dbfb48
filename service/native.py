"""service._fastpath, the per-text work of /predict compiled from service/_fastpath*.c when the
project is installed, or None where it was not built (no compiler there): each caller then runs
its Python twin. Imported once, here, for the tokenizer, the padding and the answer."""

from __future__ import annotations

from types import ModuleType

fastpath: ModuleType | None
try:
    from service import _fastpath as fastpath
except ImportError:
    fastpath = None
