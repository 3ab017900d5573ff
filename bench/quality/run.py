"""Quality of the built-in model on held-out prompts, read back with the scene parser.

Measures, through the production engine:
  * text-to-image: per-attribute accuracy (kind, colour, size, position, count, background);
  * edits: success (the instructed change is there) and retention (the rest is unchanged);
  * multi-reference composition (objects of image 1 on the background of image 2);
  * groups of random length 2-14: consistency (same object and background in every frame) and
    progression, split by length (2-4, 5-9, 10-14) and motion;
  * phrasing: captions and edits in wordings training never uses (`wording.held_out`);
  * references: compositions of 3-10 references (gather, pick, swap), drawn exactly;
  * marked: edits of the object the user boxed (remove, recolour, move), with no mark left;
  * tone: colour-tone edits of the whole picture (swap two colours, every object one colour, black and
    white), exact;
  * group_refs: groups of "the object from image K" given 1-4 references: consistency, progression and
    whether frame 1 is that object (its kind and colour);
  * positions: captions that put each position first ("at the top a red circle"), drawn exactly.
Usage: python bench/quality/run.py [--model DIR] [--n 40] [--seed 1000003] [--parts ...] [--motions ...]

Each part (and each motion and length of groups) draws from its own stream of the seed, so a run
split over processes by --parts or --motions scores the same examples as one run, and the first n
examples of a larger --n are the same n.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter, defaultdict

from PIL import Image

from seqdream.config import Settings
from seqdream.engines.base import GenerationPlan
from seqdream.engines.registry import load_engine
from seqdream.jobs.planner import plan_group
from seqdream_devkit import tasks
from seqdream_devkit.parser import find, parse
from seqdream_devkit.world import CANVAS, Scene, mark_pixels

HELD_OUT_SEED = 1_000_003  # training draws from seed 0's stream; this stream is never trained on
SIZE = 1024
PARTS = ("t2i", "edits", "compose", "groups", "phrasing", "references", "marked", "tone", "group_refs", "positions")
LENGTHS = {"2-4": (2, 4), "5-9": (5, 9), "10-14": (10, 14)}  # group lengths, scored apart


def generate(engine, prompt: str, references: tuple[Image.Image, ...], seed: int) -> Image.Image:  # type: ignore[no-untyped-def]
    refs = [image.resize((SIZE, SIZE), Image.Resampling.LANCZOS) for image in references]  # as a user uploads them
    plan = GenerationPlan(prompts=[prompt], seeds=[seed], width=SIZE, height=SIZE, references=refs)
    return engine.generate(plan).images[0]


def score_t2i(expected: Scene, seen: Scene) -> dict[str, float]:
    at = {thing.cell: thing for thing in seen.things}
    scores: dict[str, list[float]] = defaultdict(list)
    for thing in expected.things:
        found = at.get(thing.cell)
        scores["position"].append(float(any((t.kind, t.colour) == (thing.kind, thing.colour) for t in [found] if t)))
        for attribute in ("kind", "colour", "size"):
            scores[attribute].append(
                float(found is not None and getattr(found, attribute) == getattr(thing, attribute))
            )
    result = {name: statistics.mean(values) for name, values in scores.items()}
    result["count"] = float(len(seen.things) == len(expected.things))
    result["background"] = float(seen.background == expected.background)
    return result


def score_edit(source: Scene, target: Scene, seen: Scene) -> tuple[float, float]:
    """(success, retention) of one edit."""
    added, removed = set(target.things) - set(source.things), set(source.things) - set(target.things)
    kept = set(source.things) & set(target.things)
    seen_things = set(seen.things)
    if source.background != target.background:
        success = seen.background == target.background
        retention = len(kept & seen_things) / len(kept) if kept else 1.0
    else:
        success = added <= seen_things and not (removed & seen_things)
        retention = (len(kept & seen_things) + (seen.background == target.background)) / (len(kept) + 1)
    return float(success), retention


def edit_parts(source: Scene, target: Scene, seen: Scene) -> tuple[float, float] | None:
    """For edits that move or change a shape: (the new shape is drawn, the old one is gone)."""
    added, removed = set(target.things) - set(source.things), set(source.things) - set(target.things)
    if not (added and removed) or source.background != target.background:
        return None
    return float(added <= set(seen.things)), float(not (removed & set(seen.things)))


def score_group(motion: str, frames: list[Image.Image]) -> tuple[float, float]:
    """(consistency, progression) of one generated group.

    Progression: moving left to right and growing strictly at every frame, from the first
    third of the motion to the last; recolouring steps through the colour cycle in order.
    """
    seen = [find(frame) for frame in frames]
    single = all(len(found) == 1 for _, found in seen)
    if not single:
        return 0.0, 0.0
    objects = [found[0] for _, found in seen]
    backgrounds = {background for background, _ in seen}
    identity = {(o.thing.kind,) if motion == "recolouring" else (o.thing.kind, o.thing.colour) for o in objects}
    consistency = float(len(backgrounds) == 1 and len(identity) == 1)
    if motion == "recolouring":
        cycle = tasks.recolour_cycle(seen[0][0])
        colours = [o.thing.colour for o in objects]
        if colours[0] not in cycle:
            return consistency, 0.0
        start = cycle.index(colours[0])
        return consistency, float(colours == [cycle[(start + k) % len(cycle)] for k in range(len(colours))])
    if motion == "moving":
        values = [o.centre[0] for o in objects]
        spans = len(values) == 1 or (values[0] < CANVAS / 3 and values[-1] > 2 * CANVAS / 3)
    else:
        values = [float(o.area) for o in objects]
        spans = len(values) == 1 or values[-1] >= 4 * values[0]
    return consistency, float(spans and all(b > a for a, b in zip(values, values[1:], strict=False)))


def score_reference_group(
    motion: str, frames: list[tasks.Example], images: list[Image.Image]
) -> tuple[float, float, float]:
    """(consistency, progression, frame 1 is image K's object) of a group of a reference's object."""
    wanted, drawn = parse(frames[0].target).things[0], parse(images[0]).things
    same = len(drawn) == 1 and (drawn[0].kind, drawn[0].colour) == (wanted.kind, wanted.colour)
    return (*score_group(motion, images), float(same))


def group_misses(motion: str, images: list[Image.Image], wanted: tuple[str, str] | None = None) -> set[str]:
    """Why a group is not consistent and progressing (a diagnostic): a frame without exactly one
    object ("count"), the object's kind or (but when recolouring) colour or the background changing
    between frames ("kind", "colour", "background"), frames out of order ("step"), and with `wanted`
    (kind, colour) frame 1 not being that object ("first kind", "first colour")."""
    seen = [find(image) for image in images]
    reasons = {"count"} if any(len(found) != 1 for _, found in seen) else set()
    objects = [found[0].thing for _, found in seen if len(found) == 1]
    if len({thing.kind for thing in objects}) > 1:
        reasons.add("kind")
    if motion != "recolouring" and len({thing.colour for thing in objects}) > 1:
        reasons.add("colour")
    if len({background for background, _ in seen}) > 1:
        reasons.add("background")
    if not reasons and score_group(motion, images)[1] == 0.0:
        reasons.add("step")
    if wanted is not None and len(seen[0][1]) == 1:
        first = seen[0][1][0].thing
        reasons |= {f"first {name}" for name, value in zip(("kind", "colour"), wanted, strict=True)
                    if getattr(first, name) != value}  # fmt: skip
    return reasons


def misses(expected: Scene, seen: Scene) -> set[str]:
    """Why a drawing is not the expected scene: background, missing, extra, or an object in its cell
    with the wrong kind, colour or size (a diagnostic: the measures themselves stay exact)."""
    found = {thing.cell: thing for thing in seen.things}
    reasons = {"background"} if seen.background != expected.background else set()
    for thing in expected.things:
        there = found.pop(thing.cell, None)
        if there is None:
            reasons.add("missing")
        else:
            reasons |= {name for name in ("kind", "colour", "size") if getattr(there, name) != getattr(thing, name)}
    return reasons | ({"extra"} if found else set())


def stream(seed: int, part: str) -> random.Random:
    """The held-out stream of one part, the same whichever other parts run beside it."""
    return random.Random(f"{seed}/{part}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="model folder (default: the configured model)")
    parser.add_argument("--n", type=int, default=40, help="examples per measure")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="held-out stream (never 0, training's)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    parser.add_argument("--motions", default=",".join(tasks.MOTIONS), help="comma list of group motions")
    args = parser.parse_args()
    parts, asked_motions = set(args.parts.split(",")), set(args.motions.split(","))
    motions = [motion for motion in tasks.MOTIONS if motion in asked_motions]  # in the bench's own order
    unknown = (parts - set(PARTS)) | (asked_motions - set(tasks.MOTIONS))
    if unknown:
        parser.error(f"unknown parts or motions: {', '.join(sorted(unknown))}")
    settings = Settings(model=args.model) if args.model else Settings()
    engine = load_engine(settings)
    started = time.perf_counter()

    t2i: dict[str, list[float]] = defaultdict(list)
    rng = stream(args.seed, "t2i")
    for index in range(args.n if "t2i" in parts else 0):
        example = tasks.text_to_image(rng)
        for name, value in score_t2i(example.scene, parse(generate(engine, example.prompt, (), index))).items():
            t2i[name].append(value)

    edits: dict[str, list[tuple[float, float]]] = defaultdict(list)
    parts_seen: dict[str, list[tuple[float, float]]] = defaultdict(list)  # where the changing edits fail
    rng = stream(args.seed, "edits")
    for index in range(args.n if "edits" in parts else 0):
        for kind in tasks.EDITS:
            example = tasks.edit(rng, kind)
            seen = parse(generate(engine, example.prompt, example.references, index))
            source = parse(example.references[0])
            edits[kind].append(score_edit(source, example.scene, seen))
            if (part := edit_parts(source, example.scene, seen)) is not None:
                parts_seen[kind].append(part)

    compose: list[tuple[float, float, float]] = []  # (exact, background right, objects right)
    rng = stream(args.seed, "compose")
    for index in range(args.n if "compose" in parts else 0):
        example = tasks.compose(rng)
        seen = parse(generate(engine, example.prompt, example.references, index))
        right_background = seen.background == example.scene.background
        right_objects = set(seen.things) == set(example.scene.things)
        compose.append((float(seen == example.scene), float(right_background), float(right_objects)))

    groups: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for motion in motions if "groups" in parts else ():
        for bucket, (low, high) in LENGTHS.items():
            rng = stream(args.seed, f"groups/{motion}/{bucket}")
            for index in range(args.n):
                frames = tasks.sequence(rng, motion, count=rng.randint(low, high), held=None)
                group = plan_group(frames[0].group_prompt, 14, index, engine.frame_prompt)
                plan = GenerationPlan(prompts=group.prompts, seeds=group.seeds, width=SIZE, height=SIZE)
                groups[motion, bucket].append(score_group(motion, engine.generate(plan).images))

    # Why the exact measures and the groups of image K's object missed, by reason.
    why: dict[str, Counter[str]] = defaultdict(Counter)
    group_refs: dict[str, list[tuple[float, float, float]]] = defaultdict(list)  # + frame 1 is the object
    for motion in motions if "group_refs" in parts else ():
        rng = stream(args.seed, f"group_refs/{motion}")
        for index in range(args.n):
            frames = tasks.sequence(
                rng, motion, count=rng.randint(2, 14), held=None, references=rng.randint(*tasks.GROUP_REFERENCES)
            )
            group = plan_group(frames[0].group_prompt, 14, index, engine.frame_prompt)
            refs = [image.resize((SIZE, SIZE), Image.Resampling.LANCZOS) for image in frames[0].references]
            plan = GenerationPlan(prompts=group.prompts, seeds=group.seeds, width=SIZE, height=SIZE, references=refs)
            images = engine.generate(plan).images
            group_refs[motion].append(score_reference_group(motion, frames, images))
            wanted = parse(frames[0].target).things[0]
            why[f"image K's group {motion}"].update(group_misses(motion, images, (wanted.kind, wanted.colour)))

    phrasing: dict[str, list[float]] = defaultdict(list)  # held-out wordings: exact captions, edit success
    rng = stream(args.seed, "phrasing")
    for index in range(args.n if "phrasing" in parts else 0):
        example = tasks.text_to_image(rng, held=True)
        phrasing["captions"].append(float(parse(generate(engine, example.prompt, (), index)) == example.scene))
        example = tasks.edit(rng, rng.choice(tasks.EDITS), held=True)
        seen = parse(generate(engine, example.prompt, example.references, index))
        phrasing["edits"].append(score_edit(parse(example.references[0]), example.scene, seen)[0])

    def exact(name: str, expected: Scene, seen: Scene) -> float:
        why[name].update(misses(expected, seen))
        return float(seen == expected)

    references: dict[str, list[float]] = defaultdict(list)  # exact, per way of composing
    for way in tasks.COMPOSITIONS if "references" in parts else ():
        rng = stream(args.seed, f"references/{way}")
        for index in range(args.n):
            example = tasks.compose_many(rng, way)
            seen = parse(generate(engine, example.prompt, example.references, index))
            references[way].append(exact(f"references: {way}", example.scene, seen))

    marked: dict[str, list[tuple[float, float]]] = defaultdict(list)  # (success, no mark left)
    for kind in tasks.MARKED_EDITS if "marked" in parts else ():
        rng = stream(args.seed, f"marked/{kind}")
        for index in range(args.n):
            example = tasks.marked_edit(rng, kind, held=None)
            output = generate(engine, example.prompt, example.references, index)
            assert example.source is not None and example.scene is not None
            seen = parse(output)
            success = score_edit(example.source, example.scene, seen)[0]
            why[f"marked {kind}"].update(misses(example.scene, seen) if not success else ())
            marked[kind].append((success, float(mark_pixels(output) == 0)))

    tone: dict[str, list[float]] = defaultdict(list)  # exact, per kind
    for kind in tasks.TONE_EDITS if "tone" in parts else ():
        rng = stream(args.seed, f"tone/{kind}")
        for index in range(args.n):
            example = tasks.tone_edit(rng, kind, held=None)
            output = generate(engine, example.prompt, example.references, index)
            tone[kind].append(exact(f"tone {kind}", example.scene, parse(output)))

    positions: list[float] = []  # captions with every position first, drawn exactly
    rng = stream(args.seed, "positions")
    while "positions" in parts and len(positions) < args.n:
        example = tasks.text_to_image(rng, held=None)
        assert example.scene is not None
        if all(thing.phrase(position_first=True) in example.prompt.lower() for thing in example.scene.things):
            positions.append(float(parse(generate(engine, example.prompt, (), len(positions))) == example.scene))

    print(f"built-in model quality on held-out prompts ({args.n} per measure, {time.perf_counter() - started:.0f}s)")
    print(f"{'measure':36s} {'score':>7s} {'target':>7s}")
    # (name, score or a diagnostic list of share pairs, target)
    rows: list[tuple[str, float | list[tuple[float, float]], float | None]]
    rows = [(f"t2i {name}", statistics.mean(values), None) for name, values in t2i.items()]
    if t2i:
        rows.append(("t2i attribute accuracy (mean)", statistics.mean(map(statistics.mean, t2i.values())), 0.95))
    # The target holds for every edit kind, not only on average.
    rows += [(f"edit {kind} success", statistics.mean(s for s, _ in pairs), 0.90) for kind, pairs in edits.items()]
    if edits:
        every = [pair for pairs in edits.values() for pair in pairs]
        rows.append(("edit success (all kinds)", statistics.mean(s for s, _ in every), 0.90))
        rows.append(("edit retention (all kinds)", statistics.mean(r for _, r in every), 0.95))
    rows += [(f"edit {kind}: new drawn / old gone", pairs, None) for kind, pairs in parts_seen.items()]
    if compose:
        rows.append(("multi-reference composition", statistics.mean(exact for exact, _, _ in compose), 0.90))
        rows.append(("composition: background / objects", [(b, o) for _, b, o in compose], None))
    for (motion, bucket), pairs in groups.items():
        rows.append((f"group {bucket} {motion} consistency", statistics.mean(c for c, _ in pairs), 0.90))
        rows.append((f"group {bucket} {motion} progression", statistics.mean(q for _, q in pairs), 0.85))
    for motion, triples in group_refs.items():
        rows.append((f"image K's group {motion} consistency", statistics.mean(t[0] for t in triples), 0.90))
        rows.append((f"image K's group {motion} progression", statistics.mean(t[1] for t in triples), 0.85))
        rows.append((f"image K's group {motion} object", statistics.mean(t[2] for t in triples), 0.90))
    if phrasing:
        rows.append(("held-out wording: captions exact", statistics.mean(phrasing["captions"]), 0.90))
        rows.append(("held-out wording: edit success", statistics.mean(phrasing["edits"]), 0.85))
    rows += [(f"references: {way} (3-10 images) exact", statistics.mean(v), 0.90) for way, v in references.items()]
    for kind, pairs in marked.items():
        rows.append((f"marked {kind} success", statistics.mean(s for s, _ in pairs), 0.90))
        rows.append((f"marked {kind}: no mark left", statistics.mean(m for _, m in pairs), 0.90))
    rows += [(f"tone {kind} exact", statistics.mean(values), 0.90) for kind, values in tone.items()]
    if positions:
        rows.append(("captions with positions first exact", statistics.mean(positions), 0.90))
    for name, value, target in rows:
        if isinstance(value, list):  # a diagnostic pair of shares, no target
            first, second = (statistics.mean(pair[k] for pair in value) for k in (0, 1))
            print(f"{name:36s} {first:7.1%} / {second:.1%}")
            continue
        mark = "" if target is None else (" ok" if value >= target else " BELOW")
        print(f"{name:36s} {value:7.1%} {'' if target is None else f'{target:.0%}':>7s}{mark}")
    for name, counts in why.items():  # e.g. "references: pick misses: extra 15, missing 6, kind 1"
        if counts:
            print(f"{name} misses: " + ", ".join(f"{reason} {count}" for reason, count in counts.most_common()))


if __name__ == "__main__":
    main()
