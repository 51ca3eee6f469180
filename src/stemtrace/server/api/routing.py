"""Routes whose blocking work takes one trip to a worker thread, not three or four.

FastAPI runs a plain ``def`` route in its threadpool, and also each plain ``def`` dependency
and, after the route returns, the validation of its result against ``response_model``: a task
list took four trips between the event loop and a worker thread per request. Each trip is a
thread wake-up and an interpreter-lock hand-over; with ingest, 20 clients and other work on two
cores each can wait out a scheduler slice, and the API's p95 with 20 clients was 63-70 ms on a
quiet machine (docs/benchmarks-server.md, "Read and ingest isolated").

:class:`OneTripRouter` registers a plain ``def`` route as a coroutine that runs the route *and*
renders its model to JSON bytes in one worker-thread call, and the dependencies that only read
the request are coroutines (``deps.server``, ``filters.task_filters``). What a client receives is
unchanged: the same ``response_model`` in the OpenAPI spec, the same JSON (pydantic's own
serializer, as FastAPI calls it), the same errors (raised in the thread, handled on the loop).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.datastructures import DefaultPlaceholder
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

JSON = "application/json"


class OneTripRouter(APIRouter):
    """An ``APIRouter`` whose plain ``def`` routes run (and render) in one worker-thread call."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint) and not inspect.isgeneratorfunction(endpoint):
            model = kwargs.get("response_model")
            endpoint = one_trip(endpoint, None if isinstance(model, DefaultPlaceholder) else model)
        super().add_api_route(path, endpoint, **kwargs)


def one_trip(fn: Callable[..., Any], model: Any) -> Callable[..., Any]:
    """``fn`` as a coroutine: ``fn`` and its result's JSON computed in one worker thread.

    FastAPI reads the route's parameters from ``__signature__`` (annotations resolved here, in
    ``fn``'s module). Deliberately no ``__wrapped__``: FastAPI unwraps to decide whether a call
    is a coroutine, and would run this one in a thread as a plain function.
    """
    signature = inspect.signature(fn, eval_str=True)

    def work(kwargs: dict[str, Any]) -> Any:
        result = fn(**kwargs)
        if isinstance(result, BaseModel) and (model is None or type(result) is model):
            # What FastAPI's response field would write (by alias, nothing excluded), without
            # validating again a model that the route just built and validated.
            return Response(result.__pydantic_serializer__.to_json(result, by_alias=True), media_type=JSON)
        return result  # a Response, or anything FastAPI still validates (on the loop: no trip)

    async def endpoint(**kwargs: Any) -> Any:
        return await run_in_threadpool(work, kwargs)

    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(endpoint, name, getattr(fn, name))
    endpoint.__signature__ = signature  # type: ignore[attr-defined]
    return endpoint
