"""The workflows' code objects, loaded once per worker process.

Temporal's sandbox imports a workflow's module afresh for every workflow it runs, so that
no run sees another's module state: new globals, new classes, new functions. Python's
import machinery also reads and unmarshals the module's bytecode again each time (or
compiles its source, where no ``.pyc`` is written), and those code objects were 66 KiB of
the 110 KiB each cached secure email held (``SecureEmailWorkflow``, measured with
tracemalloc; about 120 of 205 KiB of RSS), and the churn of every replay during a mass
expiry (docs/BENCHMARKS.md §4).

Code objects are immutable, so each sandboxed import can execute the same one: every run
still gets its own module, globals and classes, only the bytecode is shared. A side
effect that is wanted too: the worker runs the workflow code it started with, not a file
changed on disk beneath it (the SDK re-reads it at each run: temporalio/sdk-python#607).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType


class _KeptCodeLoader(importlib.machinery.SourceFileLoader):
    """A source file loader that hands out the code it loaded first, for each file."""

    def __init__(self, fullname: str, path: str, codes: dict[str, CodeType]) -> None:
        super().__init__(fullname, path)
        self._codes = codes

    def get_code(self, fullname: str) -> CodeType | None:
        code = self._codes.get(self.path)
        if code is None:
            code = super().get_code(fullname)
            if code is not None:
                self._codes[self.path] = code
        return code


class KeptWorkflowCode(importlib.abc.MetaPathFinder):
    """Finds the modules of ``packages`` as Python would, with a loader that keeps their
    code; every other module is left to the finders after it."""

    def __init__(self, packages: Sequence[str]) -> None:
        self.packages = tuple(packages)
        self.codes: dict[str, CodeType] = {}

    def _ours(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.packages)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not self._ours(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        # Only plain source files: anything else (an extension, a zip) loads as before.
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _KeptCodeLoader(spec.loader.name, spec.loader.path, self.codes)
        return spec


def keep_workflow_code(workflows: Sequence[type]) -> KeptWorkflowCode:
    """Makes the packages that define ``workflows`` load their code once in this process
    (idempotent): called before the worker starts running workflows."""
    packages = sorted({cls.__module__.split(".")[0] for cls in workflows})
    for finder in sys.meta_path:
        if isinstance(finder, KeptWorkflowCode) and finder.packages == tuple(packages):
            return finder
    finder = KeptWorkflowCode(packages)
    sys.meta_path.insert(0, finder)
    return finder
