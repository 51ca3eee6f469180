"""The demo's Celery app and tasks: small, fast, and shaped like a real shop's workload.

Every task that waits does so through :func:`pause`, which returns early once the demo is
stopping, so Ctrl-C never waits for a slow report to finish.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery, Task

# Set when the demo shuts down: sleeping tasks wake up and finish at once.
stopping = threading.Event()


def pause(seconds: float) -> None:
    stopping.wait(seconds)


class PaymentDeclined(Exception):
    """A failure the demo produces on purpose."""


class WarehouseUnavailable(ConnectionError):
    """A transient error the demo retries until it gives up."""


def create_app(broker: str = "memory://", backend: str = "cache+memory://") -> Celery:
    """A Celery app with the demo's tasks registered (names start with ``demo.``)."""
    app = Celery("stemtrace_demo", broker=broker, backend=backend, set_as_current=False)
    app.conf.update(
        broker_transport_options={"polling_interval": 0.05},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        task_track_started=True,
        # Unlimited prefetch: on Celery 5.3 the in-process worker (threads pool, memory transport)
        # stops consuming once its prefetch window fills with retries waiting for their countdown.
        worker_prefetch_multiplier=0,
        result_expires=600,
        result_extended=False,
    )
    _register(app)
    return app


def _register(app: Celery) -> None:
    for func, options in _TASKS:
        app.task(name=f"demo.{func.__name__}", **options)(func)


def fetch_orders(shop: str, day: str) -> list[int]:
    pause(random.uniform(0.05, 0.3))
    return [random.randint(1000, 9999) for _ in range(random.randint(3, 8))]


def enrich_orders(order_ids: list[int]) -> list[dict[str, Any]]:
    pause(random.uniform(0.05, 0.2))
    return [{"order": o, "total": round(random.uniform(5, 400), 2)} for o in order_ids]


def store_orders(rows: list[dict[str, Any]]) -> int:
    pause(random.uniform(0.02, 0.1))
    return len(rows)


def resize_image(image_id: int, width: int) -> str:
    pause(random.uniform(0.02, 0.25))
    return f"img/{image_id}/{width}.webp"


def summarize(parts: list[Any]) -> dict[str, int]:
    pause(0.05)
    return {"parts": len(parts)}


def score_item(item: int) -> int:
    return (item * 7919) % 101


def charge_card(self: Task, order_id: int, amount: float, card_token: str) -> str:
    # Recovers: the gateway times out twice, then accepts.
    if self.request.retries < 2:
        raise self.retry(exc=TimeoutError("payment gateway timed out"), countdown=0.5)
    pause(0.05)
    return f"charged {amount:.2f} for order {order_id}"


def sync_inventory(self: Task, sku: str) -> None:
    # Gives up: the warehouse never answers; after max_retries the retry raises the error itself.
    pause(0.05)
    raise self.retry(exc=WarehouseUnavailable(f"warehouse did not answer for {sku}"), countdown=0.4)


def send_receipt(order_id: int, email: str) -> str:
    pause(random.uniform(0.02, 0.1))
    return f"receipt for {order_id} sent"


def capture_payment(order_id: int) -> None:
    pause(0.1)
    raise PaymentDeclined(f"card declined for order {order_id}")


def ship_parcel(parcel_id: int, address_ok: bool) -> str:
    pause(random.uniform(0.05, 0.4))
    if not address_ok:
        raise ValueError(f"parcel {parcel_id}: the carrier rejected the address")
    return f"parcel {parcel_id} shipped"


def import_catalog(self: Task, supplier: str, pages: int) -> int:
    # Spawns children from inside the task body (not a canvas): one per page.
    for page in range(pages):
        self.app.signature("demo.import_page", args=(supplier, page)).delay()
    return pages


def import_page(supplier: str, page: int) -> int:
    pause(random.uniform(0.05, 0.3))
    return random.randint(10, 50)


def monthly_report(month: str) -> str:
    pause(8.0)
    return f"report {month} ready"


def cleanup_carts(older_than_days: int) -> int:
    pause(0.1)
    return 0


_TASKS: tuple[tuple[Callable[..., Any], dict[str, Any]], ...] = (
    (fetch_orders, {}),
    (enrich_orders, {}),
    (store_orders, {}),
    (resize_image, {}),
    (summarize, {}),
    (score_item, {}),
    (charge_card, {"bind": True, "max_retries": 4}),
    (sync_inventory, {"bind": True, "max_retries": 2}),
    (send_receipt, {}),
    (capture_payment, {}),
    (ship_parcel, {}),
    (import_catalog, {"bind": True}),
    (import_page, {}),
    (monthly_report, {}),
    (cleanup_carts, {}),
)
