"""Everything the capture path reads from Celery beyond its documented signal arguments.

The signal handlers (``signals``) only know what a signal hands them; what it takes to turn that
into the facts a user expects (the exception Celery's result backend records, the running
request, the queue a message was routed to) lives here, each next to the Celery code it mirrors
and with a test per supported Celery version (``tests/unit/capture/test_celery_compat.py``).
Nothing here raises: an attribute that moved in a future Celery gives the plain answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import celery

CELERY_VERSION: tuple[int, ...] = tuple(int(p) for p in celery.__version__.split(".")[:2] if p.isdigit())

# -- exceptions ----------------------------------------------------------------


def type_name(cls: type) -> str:
    """``module.QualName``: the name a result backend stores (``exc_module`` + ``exc_type``)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _text(exc: Any) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


def exception_identity(exc: Any) -> tuple[str, str]:
    """The type name and message of the exception a task raised, as the user knows it.

    Celery hands its signals a few wrappers instead: an exception that cannot be pickled
    becomes ``UnpickleableExceptionWrapper`` (holding the original's module, class name and
    repr), a traceback carrier ``ExceptionWithTraceback`` or an ``ExceptionInfo`` hold the
    exception in an attribute. Each is opened here to the exception inside.
    """
    for _ in range(3):  # wrappers do not nest deeper
        kind = type(exc).__name__
        if kind == "ExceptionInfo" and hasattr(exc, "exception"):
            exc = exc.exception
        elif kind == "ExceptionWithTraceback" and hasattr(exc, "exc"):
            exc = exc.exc
        else:
            break
    if type(exc).__name__ == "UnpickleableExceptionWrapper":
        module, name = getattr(exc, "exc_module", None), getattr(exc, "exc_cls_name", None)
        if isinstance(module, str) and isinstance(name, str):
            text = getattr(exc, "text", None)
            if not isinstance(text, str):
                args = getattr(exc, "exc_args", ())
                text = ", ".join(_text(a) for a in args) if isinstance(args, tuple) else _text(args)
            return f"{module}.{name}", text
    return type_name(type(exc)), _text(exc)


def not_registered(name: Any) -> tuple[str, str]:
    """What Celery's result backend records for a message naming an unregistered task: the
    consumer's ``task_unknown`` signal carries the ``KeyError`` of its registry lookup, but the
    result is ``NotRegistered(name)`` (``celery.worker.consumer.Consumer.on_unknown_task``)."""
    try:
        from celery.exceptions import NotRegistered

        return exception_identity(NotRegistered(name))
    except Exception:
        return "celery.exceptions.NotRegistered", repr(name)


# -- the running request ---------------------------------------------------------

_current_worker_task: Callable[[], Any] | None = None


def current_task_id() -> str | None:
    """The id of the task whose body runs in this thread now, if any (a task that sends)."""
    global _current_worker_task
    if _current_worker_task is None:  # resolved once: an import statement per send costs ~1 µs
        from celery._state import get_current_worker_task

        _current_worker_task = get_current_worker_task
    task = _current_worker_task()
    request = request_of(task) if task is not None else None
    return getattr(request, "id", None)


def request_of(task: Any) -> Any:
    """``task.request`` (the running request's ``Context``), read straight from Celery's stack.

    The property goes through two pure-Python layers (``_LocalStack.top``, ``Local.__getattr__``);
    the same lookup done here costs a quarter of that. Where the stack is not that shape
    (``USE_FAST_LOCALS``, another Celery) or is empty (a task called directly), the property
    answers.
    """
    try:
        local = task.request_stack._local
        return local.__storage__[local.__ident_func__()]["stack"][-1]
    except Exception:
        return getattr(task, "request", None)


def sent_with_protocol_1(request: Any) -> bool:
    """Whether the worker's ``request`` came in a task protocol 1 message: the worker converts
    one to protocol 2 (``celery.worker.strategy``, ``proto1_to_proto2``) but its headers still
    lack the ``task`` name every protocol 2 message has there."""
    message = getattr(request, "_message", None) or getattr(request, "message", None)
    headers = getattr(message, "headers", None)
    return isinstance(headers, dict) and "task" not in headers


# -- queues ------------------------------------------------------------------------


def _name(value: Any) -> str | None:
    name = getattr(value, "name", value)
    return name if isinstance(name, str) else None


def _topic_match(pattern: str, key: str) -> bool:
    """AMQP topic matching: words split on ``.``; ``*`` is one word, ``#`` zero or more."""
    words, parts = key.split("."), pattern.split(".")

    def match(i: int, j: int) -> bool:
        if j == len(parts):
            return i == len(words)
        if parts[j] == "#":
            return any(match(k, j + 1) for k in range(i, len(words) + 1))
        return i < len(words) and (parts[j] in ("*", words[i])) and match(i + 1, j + 1)

    return match(0, 0)


def _bound(queue: Any, exchange: str, routing_key: str) -> bool:
    """Whether ``queue`` (a kombu ``Queue``) receives a message sent to ``exchange`` with
    ``routing_key``, by its declared binding."""
    ex = getattr(queue, "exchange", None)
    if _name(ex) != exchange:
        return False
    kind = getattr(ex, "type", "direct")
    binding = getattr(queue, "routing_key", None)
    if kind == "fanout":
        return True
    if not isinstance(binding, str):
        return False
    if kind == "topic":
        return _topic_match(binding, routing_key)
    return binding == routing_key


def routed_queue(queues: Iterable[Any], exchange: Any, routing_key: Any) -> str | None:
    """The name of the queue a message sent to ``exchange`` with ``routing_key`` lands in,
    among ``queues`` (kombu ``Queue`` objects); ``None`` when not exactly one does.

    Celery publishes a message routed to a direct queue on the default exchange (``""``) with
    the queue's name as routing key (``celery.app.amqp.send_task_message``), so that is the
    queue whatever ``queues`` holds. Otherwise (a topic or fanout exchange, or a routing key
    given explicitly) the broker routes by binding: the queues whose binding matches.
    """
    if not isinstance(routing_key, str):
        return None
    name = _name(exchange)
    if not name:
        return routing_key or None
    found = {
        q.name for q in queues if isinstance(getattr(q, "name", None), str) and _bound(q, name, routing_key)
    }
    return found.pop() if len(found) == 1 else None


def published_queue(app: Any, exchange: Any, routing_key: Any) -> str | None:
    """The queue a message ``after_task_publish`` reports lands in, by the app's queues.

    Routed by name to a direct queue (the common case), Celery sends it on the default
    exchange with the queue's name as routing key: that answers without a look at the queues.
    """
    if not _name(exchange):
        return routing_key if isinstance(routing_key, str) and routing_key else None
    return routed_queue(app_queues(app), exchange, routing_key)


def received_queue(consumer: Any, delivery_info: Any) -> str | None:
    """The queue a worker received a message from: the one of its consumer's queues whose
    binding matches the message's exchange and routing key (``delivery_info``); brokers do not
    name the queue in a delivery."""
    if not isinstance(delivery_info, dict):
        return None
    exchange, routing_key = delivery_info.get("exchange"), delivery_info.get("routing_key")
    if not _name(exchange):
        return routing_key if isinstance(routing_key, str) and routing_key else None
    return routed_queue(consumer_queues(consumer), exchange, routing_key)


def app_queues(app: Any) -> list[Any]:
    """The queues the app declares (``task_queues``, and those created since by name)."""
    try:
        return list(app.amqp.queues.values())
    except Exception:
        return []


def consumer_queues(consumer: Any) -> list[Any]:
    """The queues a worker's consumer (``task_received``'s sender) consumes from."""
    try:
        return list(consumer.task_consumer.queues)
    except Exception:
        return []


# -- beat ----------------------------------------------------------------------------

# Headers a beat-sent message may carry, whatever process captures it. Celery 5.7 marks every
# message its ``Scheduler.apply_async`` sends with ``celery_beat_task: True`` (no entry name);
# Celery 5.3 to 5.6 mark nothing. django-celery-beat's ``ModelEntry`` puts the entry's name in
# ``periodic_task_name`` on every Celery version.
BEAT_MARK_HEADER = "celery_beat_task"
BEAT_ENTRY_HEADER = "periodic_task_name"


def beat_mark(headers: Any) -> str | bool | None:
    """What a message's ``headers`` say of beat: the schedule entry's name when they name it
    (django-celery-beat), ``True`` when they only mark it (Celery >= 5.7), else ``None``."""
    if not isinstance(headers, dict):
        return None
    name = headers.get(BEAT_ENTRY_HEADER)
    if isinstance(name, str) and name:
        return name
    return True if headers.get(BEAT_MARK_HEADER) is True else None


def beat_scheduler(service: Any) -> Any:
    """The scheduler of the ``beat.Service`` that sent ``beat_init``: ``Service.scheduler`` is a
    cached property that ``Service.start`` builds before it sends the signal (5.3 to 5.7)."""
    try:
        return service.scheduler
    except Exception:
        return None


def _wrap_once(owner: Any, attr: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Replace ``owner.<attr>`` by ``wrap(original)`` unless a wrapper of ours is already there;
    ``True`` when it now is. Any error (a read-only attribute, a property that raises) leaves
    the attribute as it was: the user's process never sees it."""
    try:
        original = getattr(owner, attr)
    except Exception:
        return False
    if getattr(original, "_stemtrace_wrapped", False) or not callable(original):
        return False
    wrapper = wrap(original)
    try:
        wrapper._stemtrace_wrapped = True  # type: ignore[attr-defined]
        setattr(owner, attr, wrapper)
    except Exception:
        return False
    return True


def around_apply_async(scheduler: Any, enter: Callable[[Any], Any], leave: Callable[[Any], None]) -> bool:
    """Make ``scheduler.apply_async(entry, ...)`` call ``enter(entry)`` before it sends and
    ``leave(token)`` after; ``True`` when it now does.

    Every scheduler sends a due entry through ``apply_async(entry, producer=None, advance=True,
    **kwargs)`` (``Scheduler.apply_entry`` calls it, as do django-celery-beat's
    ``DatabaseScheduler`` and RedBeat, which inherit it): the one method whose first argument
    names the entry while the message is published. The wrapper is set on the instance, so
    the class, other schedulers and a subclass's override are left as they are.
    """

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def apply_async(*args: Any, **kwargs: Any) -> Any:
            entry = args[0] if args else kwargs.get("entry")
            token = None
            try:
                token = enter(entry)
            except Exception:
                pass
            try:
                return original(*args, **kwargs)
            finally:
                try:
                    leave(token)
                except Exception:
                    pass

        return apply_async

    return _wrap_once(scheduler, "apply_async", wrap)


# -- prefork: what a child returned, as the worker's main process gets it -------------------

# billiard's exit code of a child that ended itself after ``max_tasks_per_child`` (``EX_RECYCLE``).
_CLEAN_EXITS = frozenset({0, 0x9B})


def wrap_pool_result(request_cls: Any, note: Callable[[Any, Any], None]) -> bool:
    """Make ``request_cls.on_success`` call ``note(request, returned)`` first; ``True`` when it
    now does.

    Under prefork the worker's main process hands a task to a child through
    ``pool.apply_async(..., callback=request.on_success)``, and billiard calls that callback in
    the main process with what the child returned: ``(failed, retval, runtime)``
    (``celery.app.trace``: for a failure an ``ExceptionInfo``, else the result's ``saferepr``;
    the runtime Celery measured in the child). Celery makes one ``Request`` subclass per task
    type (``celery.worker.request.create_request_cls``, 5.3 to 5.7) that defines its own
    ``on_success``, so that subclass is wrapped, once. What the pool itself decides (a lost
    worker, a hard time limit) goes to ``on_failure`` instead: no result came back.
    """

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def on_success(self: Any, failed__retval__runtime: Any, **kwargs: Any) -> Any:
            try:
                note(self, failed__retval__runtime)
            except Exception:
                pass
            return original(self, failed__retval__runtime, **kwargs)

        return on_success

    return _wrap_once(request_cls, "on_success", wrap)


def pool_outcome(returned: Any) -> tuple[str, float | None, Any] | None:
    """The state, Celery's runtime (seconds) and the ``ExceptionInfo`` (``None`` for a success) of
    what a prefork child returned for a task (see :func:`wrap_pool_result`); ``None`` when it says
    the child was exiting (``SystemExit``: a lost worker, which Celery reports on its own).

    The child reports a retry, an ``Ignore`` and a ``Reject`` as failed, with the exception that
    said so; the main process tells them apart by its class (``Request.on_failure``), as here.
    """
    try:
        failed, retval, runtime = returned
    except Exception:
        return None
    seconds = float(runtime) if isinstance(runtime, (int, float)) and not isinstance(runtime, bool) else None
    if not failed:
        return "SUCCESS", seconds, None
    exc = getattr(retval, "exception", None)
    if type(exc).__name__ == "ExceptionWithTraceback":
        exc = getattr(exc, "exc", exc)
    if isinstance(exc, (SystemExit, KeyboardInterrupt)):
        return None
    from celery.exceptions import Ignore, Reject, Retry

    if isinstance(exc, Retry):
        state = "RETRY"
    elif isinstance(exc, Ignore):
        state = "IGNORED"
    elif isinstance(exc, Reject):
        state = "REJECTED"
    else:
        state = "FAILURE"
    return state, seconds, retval


def request_facts(request: Any) -> tuple[Any, ...]:
    """A worker ``Request``'s task id, name, retries, ``replaced_task_nesting``, the time its child
    accepted it (``time_start``: epoch seconds since 5.3, what Celery's ``task-started`` event
    says under prefork) and that child's pid: attributes every ``Request`` has (5.3 to 5.7), read
    once per task in the main process, so plainly."""
    rd = request._request_dict
    return (
        request.id,
        request.name,
        rd.get("retries") or 0,
        rd.get("replaced_task_nesting") or 0,
        request.time_start,
        request.worker_pid,
    )


def pool_processes(pool: Any) -> dict[int, Any] | None:
    """The live children of a worker's prefork ``pool`` (Celery's ``TaskPool``) by pid, or
    ``None`` when it is not that shape: billiard's ``Pool._pool`` list, from which the main
    process removes a child once it has reaped it (``Pool._join_exited_workers``)."""
    try:
        return {p.pid: p for p in list(pool._pool._pool) if isinstance(p.pid, int)}
    except Exception:
        return None


def exited_cleanly(process: Any) -> bool:
    """Whether a reaped pool child ended itself (after ``max_tasks_per_child``, or at shutdown),
    having flushed its events on ``worker_process_shutdown``. Read from the exit status billiard
    stored when it reaped the child (``Popen.returncode``), never by waiting on it here."""
    code = getattr(getattr(process, "_popen", None), "returncode", None)
    return code in _CLEAN_EXITS
