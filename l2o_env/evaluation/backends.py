"""Where sweep points run: the :class:`Backend` interface and the serial backend.

A backend maps :class:`~l2o_env.evaluation.runner.PointTask` s to
:class:`~l2o_env.evaluation.runner.PointResult` s, in task order. Tasks are independent (each has its own
random stream, see :meth:`~l2o_env.evaluation.spec.EvalSpec.point_seeds`), so a backend may run them in any
order or in parallel and the table is the same. A distributed backend implements :meth:`Backend.map`
(e.g. one remote task per point calling :func:`~l2o_env.evaluation.runner.run_point`, which builds the
registry solvers inside the task) and registers itself in :data:`BACKENDS`; it must refuse tasks that
carry user objects (``task.objects``) unless it can ship them. :mod:`l2o_env.evaluation.ray_backend` is
one (``"ray"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from l2o_env.evaluation.parsing import ConfigError
from l2o_env.evaluation.runner import PointResult, PointTask, run_point
from l2o_env.validation import choice

__all__ = ["Backend", "SerialBackend", "BACKENDS", "get_backend"]


class Backend:
    """Runs point tasks; subclasses implement :meth:`map`."""

    name = "backend"

    def map(self, tasks: Sequence[PointTask], progress: Callable[[int], None] | None = None,
            on_start: Callable[[PointTask], None] | None = None) -> list[PointResult]:
        """The results of ``tasks`` in their order. ``progress(n)`` reports solver steps done (a backend may
        call it only when a task ends); ``on_start(task)`` is called as a task starts (may be skipped)."""
        raise NotImplementedError


class SerialBackend(Backend):
    """Every point in this process, one after the other (the default)."""

    name = "serial"

    def map(self, tasks, progress=None, on_start=None):
        results = []
        for task in tasks:
            if on_start is not None:
                on_start(task)
            results.append(run_point(task, progress))
        return results


def _ray() -> Backend:
    # imported here: the module needs this one, and Ray itself is imported only when the backend is built
    from l2o_env.evaluation.ray_backend import RayBackend

    return RayBackend()


#: backend name -> a class or factory called without arguments; a distributed backend adds itself here
#: (``"ray"``: :class:`~l2o_env.evaluation.ray_backend.RayBackend` with its defaults: a local Ray, or the
#: one already initialised; build ``RayBackend(address=..., num_cpus=...)`` yourself for other settings)
BACKENDS: dict[str, Callable[[], Backend]] = {"serial": SerialBackend, "ray": _ray}


def get_backend(backend: str | Backend = "serial") -> Backend:
    """A backend instance from its name (``"serial"``, ``"ray"``) or the instance itself."""
    if isinstance(backend, Backend):
        return backend
    try:
        name = choice("evaluate", "backend", backend, tuple(BACKENDS))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return BACKENDS[name]()
