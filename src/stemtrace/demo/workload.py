"""What the demo keeps sending: one function per kind of workflow, and the loop that paces them."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import date, timedelta

from celery import Celery, chain, chord, group
from celery.canvas import Signature

logger = logging.getLogger("stemtrace.demo")

Scenario = Callable[[Celery, random.Random], str]


def _sig(app: Celery, name: str, *args: object, **kwargs: object) -> Signature:
    return app.signature(f"demo.{name}", args=args, kwargs=kwargs)


def _day(rng: random.Random) -> str:
    return (date(2026, 1, 1) + timedelta(days=rng.randint(0, 364))).isoformat()


def nightly_orders_chain(app: Celery, rng: random.Random) -> str:
    shop = rng.choice(["berlin", "lyon", "porto"])
    fetch = _sig(app, "fetch_orders", shop, _day(rng))
    chain(fetch, _sig(app, "enrich_orders"), _sig(app, "store_orders")).delay()
    return "chain"


def thumbnails_group(app: Celery, rng: random.Random) -> str:
    image = rng.randint(1, 10_000)
    group(_sig(app, "resize_image", image, w) for w in (160, 320, 640, 1280)).delay()
    return "group"


def gallery_chord(app: Celery, rng: random.Random) -> str:
    images = rng.sample(range(1, 10_000), 5)
    chord([_sig(app, "resize_image", i, 640) for i in images], _sig(app, "summarize")).delay()
    return "chord"


def nested_canvas(app: Celery, rng: random.Random) -> str:
    # A chord whose header holds a chain, a nested chord and a task, followed by one more step.
    shop = rng.choice(["berlin", "lyon", "porto"])
    sizes = [_sig(app, "resize_image", rng.randint(1, 99), w) for w in (160, 320)]
    inner = chord(sizes, _sig(app, "summarize"))
    header = [
        chain(_sig(app, "fetch_orders", shop, _day(rng)), _sig(app, "enrich_orders")),
        inner,
        _sig(app, "resize_image", rng.randint(1, 99), 1280),
    ]
    chain(chord(header, _sig(app, "summarize")), _sig(app, "store_orders")).delay()
    return "nested"


def retry_recovers(app: Celery, rng: random.Random) -> str:
    order = rng.randint(1000, 9999)
    chain(
        _sig(app, "charge_card", order, round(rng.uniform(5, 300), 2), card_token="tok_4242_demo"),
        _sig(app, "send_receipt", order, email="buyer@example.com").set(immutable=True),
    ).delay()
    return "retry-recovers"


def retry_gives_up(app: Celery, rng: random.Random) -> str:
    _sig(app, "sync_inventory", f"SKU-{rng.randint(100, 999)}").delay()
    return "retry-gives-up"


def failing_chain(app: Celery, rng: random.Random) -> str:
    # The middle step fails, so the receipt is never sent: the graph shows it as never run.
    order = rng.randint(1000, 9999)
    chain(
        _sig(app, "enrich_orders", [order]),
        _sig(app, "capture_payment", order).set(immutable=True),
        _sig(app, "send_receipt", order, email="buyer@example.com").set(immutable=True),
    ).delay()
    return "failure"


def failing_chord(app: Celery, rng: random.Random) -> str:
    # One header task fails, so the chord's callback never runs.
    parcels = rng.sample(range(100, 999), 4)
    header = [_sig(app, "ship_parcel", p, i != 2) for i, p in enumerate(parcels)]
    chord(header, _sig(app, "summarize")).delay()
    return "failed-chord"


def revoked_task(app: Celery, rng: random.Random) -> str:
    # Scheduled a little ahead, then cancelled before it runs (remote control works in-process).
    result = _sig(app, "cleanup_carts", 30).apply_async(countdown=3)
    app.control.revoke(result.id)
    return "revoked"


def expired_task(app: Celery, rng: random.Random) -> str:
    # Due after its expiry, so the worker revokes it as expired instead of running it.
    _sig(app, "cleanup_carts", 90).apply_async(countdown=1.5, expires=0.5)
    return "expired"


def spawned_children(app: Celery, rng: random.Random) -> str:
    _sig(app, "import_catalog", rng.choice(["acme", "globex", "initech"]), rng.randint(3, 6)).delay()
    return "spawned"


def fan_out(app: Celery, rng: random.Random) -> str:
    chord([_sig(app, "score_item", i) for i in range(500)], _sig(app, "summarize")).delay()
    return "fan-out-500"


def slow_report(app: Celery, rng: random.Random) -> str:
    _sig(app, "monthly_report", f"2026-{rng.randint(1, 12):02d}").delay()
    return "slow"


# One of each, in the order the first round sends them. The loop afterwards repeats the light
# ones and sends the heavy ones (fan-out, slow report) once every HEAVY_EVERY workflows.
LIGHT: tuple[Scenario, ...] = (
    nightly_orders_chain,
    thumbnails_group,
    gallery_chord,
    nested_canvas,
    retry_recovers,
    retry_gives_up,
    failing_chain,
    failing_chord,
    revoked_task,
    expired_task,
    spawned_children,
)
HEAVY: tuple[Scenario, ...] = (fan_out, slow_report)
HEAVY_EVERY = 25


class Workload:
    """Sends one round of every scenario, then ``rate`` workflows per minute until stopped."""

    def __init__(self, app: Celery, rate: float, seed: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.app = app
        self.interval = 60.0 / rate
        self.rng = random.Random(seed)
        self.sent: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _send(self, scenario: Scenario) -> None:
        try:
            kind = scenario(self.app, self.rng)
        except Exception:  # a demo that stops producing is worse than one odd failure
            logger.exception("demo scenario %s failed to send", scenario.__name__)
            return
        self.sent[kind] = self.sent.get(kind, 0) + 1

    def run(self) -> None:
        for scenario in (*LIGHT, *HEAVY):
            if self._stop.is_set():
                return
            self._send(scenario)
        count = 0
        while not self._stop.wait(self.interval):
            count += 1
            if count % HEAVY_EVERY == 0:
                self._send(HEAVY[(count // HEAVY_EVERY - 1) % len(HEAVY)])
            else:
                self._send(self.rng.choice(LIGHT))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="stemtrace-demo-workload", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
