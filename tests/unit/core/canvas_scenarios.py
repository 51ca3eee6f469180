"""Canvases as Celery runs them (docs/research/celery-internals.md §2.3), as event streams.

Ids are short labels; ``G*`` are group ids. Where a scenario differs between
Celery versions, ``v53=True`` gives the 5.3-5.5 shape (chord callback without the
header's group id), else the 5.6+ shape.
"""

from __future__ import annotations

from canvas_factory import Recorder, canvas, chain_sig, chord_sig, sig

from stemtrace.core.events import Event


def single() -> list[Event]:
    r = Recorder()
    r.publish("client", "s0")
    r.run("s0")
    return r.events


def chain(*, fail_second: bool = False) -> list[Event]:
    """chain(add, add, add): the first message names the whole future."""
    r = Recorder()
    r.publish("client", "a0", canvas=canvas(chain=[sig("a2"), sig("a1")]))
    r.receive("a0")
    r.start("a0")
    r.publish("child1", "a2", root="a0", parent="a0", canvas=canvas(chain=[sig("a1")]))
    r.succeed("a0")
    r.receive("a2")
    r.start("a2", child="child2")
    if fail_second:
        r.fail("a2", child="child2")  # a1 is never sent
        return r.events
    r.publish("child2", "a1", root="a0", parent="a2", canvas=canvas())
    r.succeed("a2", child="child2")
    r.run("a1")
    return r.events


def group() -> list[Event]:
    """group(add, add) from a client: each member is its own root."""
    r = Recorder()
    r.publish("client", "g0", group="G1", gidx=0)
    r.publish("client", "g2", group="G1", gidx=1)
    r.run("g0")
    r.run("g2", child="child2")
    return r.events


def chord(*, v53: bool = False, fail_member: bool = False) -> list[Event]:
    """chord([add, add], tsum): the callback's parent is the last header task to finish."""
    r = Recorder()
    body = sig("b2", "tsum", group_id="G1")
    r.publish("client", "h0", group="G1", gidx=0, canvas=canvas(chord=body))
    r.publish("client", "h3", group="G1", gidx=1, canvas=canvas(chord=body))
    r.run("h0")
    if fail_member:
        r.run("h3", child="child2", ok=False)
        return r.events
    r.receive("h3")
    r.start("h3", child="child2")
    r.publish("child2", "b2", "tsum", root="h3", parent="h3", group=None if v53 else "G1")
    r.succeed("h3", child="child2")
    r.run("b2", "tsum")
    return r.events


def chain_group_upgrade(*, v53: bool = False) -> list[Event]:
    """chain(add, group(add, add), tsum): the group|task pair is upgraded to a chord."""
    r = Recorder()
    body = sig("b2", "tsum", group_id="G1")
    header = [sig("m3", group_id="G1", group_index=0), sig("m4", group_id="G1", group_index=1)]
    r.publish("client", "a0", canvas=canvas(chain=[chord_sig("G1", header, body)]))
    r.receive("a0")
    r.start("a0")
    r.publish("child1", "m3", root="a0", parent="a0", group="G1", gidx=0, canvas=canvas(chord=body))
    r.publish("child1", "m4", root="a0", parent="a0", group="G1", gidx=1, canvas=canvas(chord=body))
    r.succeed("a0")
    r.run("m3", child="child2")
    r.receive("m4")
    r.start("m4")
    # The chord's options (parent = the task before the chord) were pushed into the body.
    r.publish("child1", "b2", "tsum", root="a0", parent="a0", group=None if v53 else "G1")
    r.succeed("m4")
    r.run("b2", "tsum")
    return r.events


def group_of_chains() -> list[Event]:
    """group(chain(add, add), chain(add, add)): only the chain tails carry the group id."""
    r = Recorder()
    r.publish("client", "x0", canvas=canvas(chain=[sig("x1", group_id="G4", group_index=0)]))
    r.publish("client", "x2", canvas=canvas(chain=[sig("x3", group_id="G4", group_index=1)]))
    r.receive("x0")
    r.start("x0")
    r.publish("child1", "x1", root="x0", parent="x0", group="G4", gidx=0, canvas=canvas())
    r.succeed("x0")
    r.receive("x2")
    r.start("x2", child="child2")
    r.publish("child2", "x3", root="x2", parent="x2", group="G4", gidx=1, canvas=canvas())
    r.succeed("x2", child="child2")
    r.run("x1")
    r.run("x3", child="child2")
    return r.events


def nested_chord(*, v53: bool = False) -> list[Event]:
    """chord([chain(add, add), chord([add, add], tsum)], tsum): three different root ids."""
    r = Recorder()
    outer_body = sig("n6", "tsum", group_id="G5")
    inner_body = sig("n4", "tsum", group_id="G5", group_index=1, chord=outer_body)
    r.publish(
        "client", "n0", canvas=canvas(chain=[sig("n1", group_id="G5", group_index=0, chord=outer_body)])
    )
    r.publish("client", "n2", group="G3", gidx=0, canvas=canvas(chord=inner_body))
    r.publish("client", "n7", group="G3", gidx=1, canvas=canvas(chord=inner_body))
    r.receive("n0")
    r.start("n0")
    r.publish("child1", "n1", root="n0", parent="n0", group="G5", gidx=0, canvas=canvas(chord=outer_body))
    r.succeed("n0")
    r.run("n1")
    r.run("n2", child="child2")
    r.receive("n7")
    r.start("n7", child="child2")
    r.publish(
        "child2", "n4", "tsum", root="n7", parent="n7", group="G5", gidx=1, canvas=canvas(chord=outer_body)
    )
    r.succeed("n7", child="child2")
    r.receive("n4", "tsum")
    r.start("n4", "tsum")
    r.publish("child1", "n6", "tsum", root="n7", parent="n4", group=None if v53 else "G5")
    r.succeed("n4", "tsum")
    r.run("n6", "tsum")
    return r.events


def chord_mid_chain(*, v53: bool = False) -> list[Event]:
    """chain(add, chord([add, add], tsum), add): the chord body is itself a chain."""
    r = Recorder()
    body = chain_sig(sig("b5", "tsum"), sig("z2", group_id=None if v53 else "G1"))
    header = [sig("m1", group_id="G1", group_index=0), sig("m3", group_id="G1", group_index=1)]
    r.publish("client", "a0", canvas=canvas(chain=[chord_sig("G1", header, body)]))
    r.receive("a0")
    r.start("a0")
    r.publish("child1", "m1", root="a0", parent="a0", group="G1", gidx=0, canvas=canvas(chord=body))
    r.publish("child1", "m3", root="a0", parent="a0", group="G1", gidx=1, canvas=canvas(chord=body))
    r.succeed("a0")
    r.run("m1")
    r.receive("m3")
    r.start("m3", child="child2")
    r.publish("child2", "b5", "tsum", root="a0", parent="m3", canvas=canvas(chain=[sig("z2")]))
    r.succeed("m3", child="child2")
    r.receive("b5", "tsum")
    r.start("b5", "tsum")
    r.publish("child1", "z2", root="a0", parent="b5", group=None if v53 else "G1")
    r.succeed("b5", "tsum")
    r.run("z2")
    return r.events


def link() -> list[Event]:
    """add.apply_async(link=add.s(10), link_error=errh.s()): the callback's id is fresh."""
    r = Recorder()
    r.publish(
        "client",
        "l0",
        canvas=canvas(callbacks=[sig(None, "add")], errbacks=[sig(None, "errh")]),
    )
    r.receive("l0")
    r.start("l0")
    r.publish("child1", "l1", root="l0", parent="l0")
    r.succeed("l0")
    r.run("l1")
    return r.events


def spawner(children: int = 3) -> list[Event]:
    """A task body calling ``.delay()``: children are spawned, not chained."""
    r = Recorder()
    r.publish("client", "sp", "spawner")
    r.receive("sp", "spawner")
    r.start("sp", "spawner")
    for i in range(children):
        r.publish("child1", f"k{i}", root="sp", parent="sp")
    r.succeed("sp", "spawner")
    for i in range(children):
        r.run(f"k{i}", child="child2")
    return r.events


def retry(*, give_up: bool = False) -> list[Event]:
    """self.retry() twice: the same id, one attempt per ``retries``."""
    r = Recorder()
    r.publish("client", "r0", "flaky")
    for attempt in range(3):
        r.receive("r0", "flaky", retries=attempt)
        r.start("r0", "flaky", retries=attempt)
        if attempt < 2:
            r.publish("child1", "r0", "flaky", root="r0", parent="r0", retries=attempt + 1)
            r.retry("r0", "flaky", retries=attempt)
    if give_up:
        r.fail("r0", "flaky", retries=2)
    else:
        r.succeed("r0", "flaky", retries=2)
    return r.events


def replace() -> list[Event]:
    """chain(replacer, add) where replacer does ``self.replace(chain(add, add))``."""
    r = Recorder()
    r.publish("client", "p0", "replacer", canvas=canvas(chain=[sig("p1")]))
    r.receive("p0", "replacer")
    r.start("p0", "replacer")
    r.publish("child1", "p2", root="p0", parent="p0", nesting=1, canvas=canvas(chain=[sig("p0"), sig("p1")]))
    r.emit("child1", "task.postrun", "p0", "replacer", retries=0, state="IGNORED", runtime=0.001)
    r.receive("p2")
    r.start("p2", child="child2")
    r.publish("child2", "p0", root="p0", parent="p2", nesting=1, canvas=canvas(chain=[sig("p1")]))
    r.succeed("p2", child="child2")
    r.receive("p0")
    r.start("p0")
    r.publish("child1", "p1", root="p0", parent="p0", nesting=1)
    r.succeed("p0")
    r.run("p1")
    return r.events


def chord_unlock(*, v53: bool = False) -> list[Event]:
    """A chord on a polling result backend: ``celery.chord_unlock`` publishes the callback."""
    r = Recorder()
    unlock = "celery.chord_unlock"
    body = sig("b3", "tsum", group_id="G2")
    r.publish("client", "u0", unlock, args=["G2", {"task": "tsum", "options": {"task_id": "b3"}}])
    r.publish("client", "h1", group="G2", gidx=0, canvas=canvas(chord=body))
    r.publish("client", "h4", group="G2", gidx=1, canvas=canvas(chord=body))
    r.run("h1")
    r.run("h4", child="child2")
    r.receive("u0", unlock)
    r.start("u0", unlock)
    r.publish("child1", "b3", "tsum", root="u0", parent="u0", group=None if v53 else "G2")
    r.succeed("u0", unlock)
    r.run("b3", "tsum")
    return r.events


def redelivered() -> list[Event]:
    """acks_late + reject_on_worker_lost: the child dies, the message comes back."""
    r = Recorder()
    r.publish("client", "d0", "job")
    r.receive("d0", "job")
    r.start("d0", "job")
    r.receive("d0", "job", main="main2", redelivered=True)
    r.start("d0", "job", child="child2")
    r.succeed("d0", "job", child="child2")
    return r.events
