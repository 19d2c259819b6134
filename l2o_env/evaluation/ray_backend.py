"""Sweep points as Ray tasks: ``evaluate(..., backend="ray")`` and ``l2o eval --backend ray``.

Every sweep point x seed (:func:`~l2o_env.evaluation.runner.make_tasks`) becomes one Ray remote task that
calls :func:`~l2o_env.evaluation.runner.run_point`; the task carries the frozen spec, the point's index and
its env seed, and builds its registry solvers inside the worker from their name and keyword arguments. No
live object travels: solver objects the user passed directly (``task.objects``) are refused, since they
may not pickle and the serial backend's contract is that they keep their state from point to point; so are
names given to ``solvers.register`` in this process, which a worker process does not know. Your own class
reaches the workers through the ``l2o_env.solvers`` entry-point group of a package installed where they
run; otherwise use the serial backend. Each task has
its own random stream (``SeedSequence``), so the table is the serial backend's bit for bit, timings aside.

Where it runs:

- ``RayBackend()`` with Ray not yet initialised starts a local Ray (``ray.init``) on this machine, with
  every core or ``num_cpus`` of them, and leaves it running for later evaluations in this process (Ray
  shuts it down at exit); the start costs seconds (~10 s on a loaded 2-core machine).
- ``RayBackend(address="HOST:6379")`` (or ``"auto"``, or the ``RAY_ADDRESS`` environment variable) joins
  an existing cluster started with ``ray start --head``; ``num_cpus`` is then the cluster's business and
  is refused. The workers need the same ``l2o-env`` (and torch) installed.
- Ray already initialised (e.g. by the caller's own ``ray.init``): that Ray is used as it is.

Files travel as paths, not contents: a checkpoint given as ``--solver-kwargs mlp.checkpoint=runs/mlp.pt``
(or ``pretrained=True``'s pick) is opened by the worker, so on a cluster the path must resolve on every
node (a shared file system, or the same path on each machine); relative paths are relative to the
worker's working directory, so give absolute ones.

Threads: each task asks Ray for one CPU and runs torch, OpenMP and BLAS with ``threads_per_task`` threads
(default 1; the workers' ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and
``torch.set_num_threads``), with ``OMP_WAIT_POLICY=PASSIVE`` (see :mod:`l2o_env._threads`), so ``n`` CPUs run
``n`` tasks without oversubscribing the cores. ``time_per_slot_s`` is then the one-thread time of a worker.

Ray is imported only when this backend is built; without it the error says to
``pip install "l2o-env[ray]"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from l2o_env.evaluation.backends import Backend
from l2o_env.evaluation.parsing import ConfigError
from l2o_env.evaluation.runner import PointResult, PointTask, run_point
from l2o_env.validation import integer

__all__ = ["RayBackend", "MissingExtraError", "INSTALL_HINT", "worker_env"]

INSTALL_HINT = 'pip install "l2o-env[ray]"'


class MissingExtraError(ConfigError, ImportError):
    """An optional dependency is not installed: an ``ImportError`` for Python callers, and a
    :class:`ConfigError` so that ``l2o eval`` prints it as one line (exit status 2)."""


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError(f"backend 'ray' needs Ray, which is not installed ({exc}); install the extra: "
                                f"{INSTALL_HINT}") from None
    return ray


def worker_env(threads: int) -> dict[str, str]:
    """The environment variables of a worker running ``threads`` threads per task (set before torch and the
    BLAS load in the worker process)."""
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "OMP_WAIT_POLICY": "PASSIVE"}


def _run_in_worker(task: PointTask, threads: int) -> PointResult:
    """The body of a Ray task: cap torch's threads (the process may be reused), then run the point."""
    for key, value in worker_env(threads).items():
        os.environ.setdefault(key, value)  # the runtime_env's values; matters only if torch is not loaded yet
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return run_point(task)


_GROUP = "l2o_env.solvers"


def _registered_here() -> frozenset[str]:
    """Names given to ``solvers.register`` in this process (not entry points, not the built-ins)."""
    from solvers import registry

    return frozenset(getattr(registry, "_RUNTIME", {}))


class RayBackend(Backend):
    """One Ray task per sweep point and seed (see the module docstring).

    Args:
        address: the Ray cluster to join (``"HOST:PORT"`` of ``ray start --head``, or ``"auto"``); ``None``
            starts a local Ray unless one is initialised (``RAY_ADDRESS`` in the environment also joins).
        num_cpus: CPUs of the local Ray this backend starts (integer >= 1; default: every core); refused
            with ``address``.
        threads_per_task: torch/OpenMP/BLAS threads of each task (integer >= 1, default 1); each task asks
            Ray for that many CPUs.

    Raises:
        MissingExtraError (an ``ImportError`` and a ``ConfigError``): Ray is not installed.
        ConfigError: a bad argument, or ``num_cpus`` with ``address``.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, threads_per_task: int = 1):
        try:
            self.num_cpus = None if num_cpus is None else integer("RayBackend", "num_cpus", num_cpus, minimum=1)
            self.threads = integer("RayBackend", "threads_per_task", threads_per_task, minimum=1)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ConfigError(f"RayBackend: address must be a Ray address such as '127.0.0.1:6379' or 'auto', "
                              f"got {address!r}")
        if address is not None and num_cpus is not None:
            raise ConfigError(f"RayBackend: num_cpus={num_cpus} sizes a local Ray; a cluster ({address!r}) has the "
                              "CPUs its nodes were started with (ray start --num-cpus); drop num_cpus")
        self.address = address
        self.ray = _import_ray()  # fail here, before the evaluation builds anything

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if self.address is not None:
            kwargs["address"] = self.address
        if self.num_cpus is not None:
            kwargs["num_cpus"] = self.num_cpus
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise ConfigError(f"backend 'ray': cannot reach a Ray cluster at {self.address!r} ({exc}); start one with "
                              "`ray start --head` or leave out the address to start a local Ray") from None

    def map(self, tasks: Sequence[PointTask], progress: Callable[[int], None] | None = None,
            on_start: Callable[[PointTask], None] | None = None) -> list[PointResult]:
        """Submit every task, then collect them as they finish (``progress`` is told of a task's solver
        steps when it ends; ``on_start`` is not called: Ray does not say when a task starts); the results
        come back in task order. A task that raises cancels the others and re-raises its error."""
        tasks = list(tasks)
        users = sorted({label for t in tasks for label in (t.objects or {})})
        if users:
            raise ConfigError(f"backend 'ray' runs solvers built from their registry name inside each task; solver(s) "
                              f"{users} are Python objects, which it does not ship. Give them by registry name (your "
                              f"own class through the entry-point group {_GROUP!r} of a package installed where the "
                              "workers run) or use backend='serial'")
        local = sorted({s.name for t in tasks for s in t.spec.solvers if s.name in _registered_here()})
        if local:
            raise ConfigError(f"backend 'ray': solver(s) {local} were registered in this process with "
                              "solvers.register, which Ray's worker processes do not see; register them through the "
                              f"entry-point group {_GROUP!r} of a package installed where the workers run, or use "
                              "backend='serial'")
        if not tasks:
            return []
        self._connect()
        ray = self.ray
        remote = ray.remote(_run_in_worker).options(
            num_cpus=self.threads, runtime_env={"env_vars": worker_env(self.threads)})
        refs = [remote.remote(t, self.threads) for t in tasks]
        where = {ref: i for i, ref in enumerate(refs)}
        results: list[PointResult | None] = [None] * len(tasks)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    i = where[ref]
                    results[i] = ray.get(ref)
                    if progress is not None:
                        t = tasks[i].spec
                        progress(t.chunks * t.episode_length * len(t.solvers))
        except BaseException as exc:
            for ref in pending:
                ray.cancel(ref, force=True)
            cause = getattr(exc, "cause", None)
            if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, Exception):
                raise cause from None  # the task's own error (a ConfigError stays one), not Ray's wrapper
            raise
        return results  # type: ignore[return-value]
