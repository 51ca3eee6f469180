"""Record ``fixtures_extra/``: canvases ``test_relabel.py`` and the roll-up tests replay.

Not collected by pytest. Same recorder as ``record.py`` (real prefork worker, Redis),
written to ``fixtures_extra/`` so ``test_golden.py`` (one expectation per scenario of
``record.py``) does not pick them up::

    PYTHONPATH=src:. .venv/bin/python tests/golden/record_extra.py
    PYTHONPATH=src:. .venv-celery53/bin/python tests/golden/record_extra.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import tests.golden.record as recorder
from celery import chain, group

recorder.FIXTURES = Path(__file__).resolve().parent / "fixtures_extra"
recorder.SCENARIOS = (
    recorder.Scenario(
        "chain_two_groups",
        lambda t: chain(
            t.add.s(1, 1), group(t.add.s(1), t.add.s(2)), group(t.tsum.s(), t.tsum.s()), t.tsum.s()
        ).apply_async(),
        settle_s=2.0,
    ),
    recorder.Scenario(
        "chain_rejected",  # Reject(requeue=False) mid-chain: the last step never runs
        lambda t: chain(
            t.add.s(1, 1), t.app.signature("t.rejector", immutable=True), t.add.s(3)
        ).apply_async(),
    ),
    recorder.Scenario(
        "chain_ignored",  # raise Ignore() mid-chain: the last step never runs
        lambda t: chain(
            t.add.s(1, 1), t.app.signature("t.ignorer", immutable=True), t.add.s(3)
        ).apply_async(),
    ),
)

if __name__ == "__main__":
    sys.exit(recorder.main(sys.argv[1:]))
