"""Running plans: one runner for sync callers, one for async callers, one error handling.

A plan is a generator that yields calls and receives each call's result. A call is
``(target, keyword arguments)``: ``target`` names a method of the client (:data:`.backends.ClientMethod`)
or is a callable (CPU work such as encoding, or a method of an index when a vector store runs
the plan). A call that raises has its exception thrown into the plan at the ``yield``, so the plan
alone decides what to catch (``add_texts`` turns a failed batch into an ``IndexingError``) and what
to let through. The index's plans and the vector stores' plans run on these two functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from .backends import AsyncClient, Client, ClientMethod

Call = tuple[ClientMethod | Callable[..., Any], dict[str, Any]]
T = TypeVar("T")
Plan = Generator[Call, Any, T]


def run_plan(plan: Plan[T], client: Client | None = None, lock: AbstractContextManager[Any] | None = None) -> T:
    """Run ``plan`` to its end; client methods run on ``client`` under ``lock``, callables outside it."""
    guard = lock if lock is not None else contextlib.nullcontext()
    try:
        call = next(plan)
        while True:
            target, kwargs = call
            try:
                if callable(target):  # CPU work (encoding) runs outside the lock
                    result = target(**kwargs)
                else:
                    with guard:
                        result = getattr(_client(client, target), target)(**kwargs)
            except Exception as error:  # handed to the plan, which decides what to raise
                call = plan.throw(error)
            else:
                call = plan.send(result)
    except StopIteration as stop:
        return stop.value


async def run_plan_async(plan: Plan[T], client: AsyncClient | None = None) -> T:
    """:func:`run_plan` awaiting: client methods and coroutine functions are awaited, other callables
    (CPU work) run in a worker thread, off the event loop."""
    try:
        call = next(plan)
        while True:
            target, kwargs = call
            try:
                if not callable(target):
                    result = await getattr(_client(client, target), target)(**kwargs)
                elif inspect.iscoroutinefunction(target):
                    result = await target(**kwargs)
                else:
                    result = await asyncio.to_thread(target, **kwargs)
            except Exception as error:
                call = plan.throw(error)
            else:
                call = plan.send(result)
    except StopIteration as stop:
        return stop.value


def _client(client: object | None, method: str) -> object:
    if client is None:
        raise TypeError(f"the plan calls the client's {method}() but was run without a client")
    return client
