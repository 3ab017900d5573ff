"""How people word prompts for the shape world: the grammar the built-in model is trained on.

Every caption and instruction is drawn from a small grammar of *forms*: clause order, an
"an image of" prefix, how objects are joined, the verb of an edit, capitals and a final full
stop. Each form has an index tuple, and a fixed rule holds some combinations out of training
(`held_out`): every word and every option is trained, but the bench's phrasing stream draws
only combinations training never saw, so it measures generalisation, not memory.

The grammar users read (README, `/api/v3/examples`) is GRAMMAR below.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from seqdream_devkit.world import Scene, Thing, position_phrase

GRAMMAR = """
Any prompt may start with a capital letter and end with a full stop (the built-in model reads
every capital as lower case).
caption  := [prefix] body
prefix   := "an image of " | "a picture of " | "a drawing of "
body     := objects " on a " C " background" | objects " against a " C " background"
          | "a " C " background with " objects | "on a " C " background, " objects
objects  := object | object (", " object)* (" and " | ", and " | ", ") object
object   := "a " size " " colour " " kind " " position
position := "at the top left" | "at the top" | "on the left" | "in the center" | ... (9 cells)
edit     := ("add" | "draw") object
          | ("remove" | "delete" | "erase") name
          | ("make" | "turn") name colour | "change " name " to " colour
          | "make " name (" small" | " large" | " bigger" | " larger" | " smaller")
          | "move " name " to the " place | ("put" | "place") name position
          | ("replace " name " with" | "turn " name " into" | "change " name " into") object-without-position
          | ("change" | "set") " the background to " C | ("make" | "turn") " the background " C
compose  := "put the objects from image 1 on the background of image 2" (or "place the shapes ...", "onto")
group    := ("a series of N images of " | "N images of " | "a sequence of N frames of "
          | "a set of N pictures showing ") what      (N: 2-14, in digits or words)
what     := "a small " colour " " kind " moving from left to right" | "a " colour " " kind " moving"
          | "a " colour " " kind " in the center growing" | "a " colour " " kind " growing"
          | "a large " kind " in the center changing colour from " colour " to " colour | "a " kind " changing colour"
          followed by [" on a " C " background"] (white when not named)
name     := "the " [colour " "] kind [position]   (the colour may go when the kind is unique)
C        := a background colour: white, black, blue, green, yellow or purple
"""
# Round 3 (leg 21 on): positions first, compositions of 3-10 references, edits of a marked object.
GRAMMAR_ROUND3 = """
object   := ... | position " a " size " " colour " " kind      (the position first: "at the top a small red circle")
compose  := ... | "put the objects of images " I " to " J " together on a " C " background"
          | "combine the shapes from images " I " to " J " on a " C " background"
          | "put the objects of images " I ", " J " and " K " together on a " C " background"
          | ["put "] picked " on the background of image " K
          | "take " picked " and put them on the background of image " K
          | "the background of image " I " with the objects of image " J
          | "put the objects from image " I " on the background of image " J      (I, J, K: 1-10)
picked   := "the " kind " from image " I " and the " kind " from image " J   (2 or 3 of them)
marked   := ("remove" | "delete" | "erase") mark | ("make" | "turn") mark " " colour | "change " mark " to " colour
          | "move " mark " to the " place | ("put" | "place") mark " " position
mark     := "the marked object" | "the marked shape" | "the object in the box"   (the box the user drew)
"""
ROUND3_TASKS = ("compose_many", "marked", "tone")
# Colour tone (leg 28 on): a model trained before it has the rest of round 3 without these lines.
GRAMMAR_TONE = """
tone     := ("swap" | "exchange" | "switch") " the colours of " name " and " name
          | ("make all the objects " | "turn all the shapes " | "make every shape " | "colour every object ") colour
          | ("make it" | "turn the picture" | "make the image" | "draw it in") " black and white"
          (black and white: every object black on a white background)
"""


# Groups of an object from a reference (leg 29 on).
GRAMMAR_GROUP_REFERENCES = """
what     := ... | "the object from image " K (" moving from left to right" | " moving" | " in the center growing"
          | " growing" | " in the center changing colour" | " changing colour")   (the one object of image K)
"""


def grammar(trained: tuple[str, ...]) -> str:
    """The grammar of a model trained on `trained` (the task names of its training.json's task mix)."""
    parts = [GRAMMAR]
    if set(ROUND3_TASKS) & set(trained):
        parts.append(GRAMMAR_ROUND3)
    if "tone" in trained:
        parts.append(GRAMMAR_TONE)
    if "sequence_ref" in trained:
        parts.append(GRAMMAR_GROUP_REFERENCES)
    return "\n".join(part.strip() for part in parts)


PREFIXES = ("", "an image of ", "a picture of ", "a drawing of ")
BODIES = (
    "{objects} on a {bg} background",
    "{objects} against a {bg} background",
    "a {bg} background with {objects}",
    "on a {bg} background, {objects}",
)
JOINERS = (" and ", ", and ", ", ")
POSITION_FIRST_SHARE = 0.3  # captions that put each object's position before it ("at the top a red circle")
FINALS = ("", ".")

# Verbs of each edit kind, as templates over {name} (the object), {value} (colour, size,
# place or new object). The first of each is the canonical wording.
EDIT_VERBS: dict[str, tuple[str, ...]] = {
    "add": ("add {value}", "draw {value}"),
    "remove": ("remove {name}", "delete {name}", "erase {name}"),
    "recolour": ("make {name} {value}", "turn {name} {value}", "change {name} to {value}"),
    "resize": ("make {name} {value}",),
    "move": ("move {name} {value}", "put {name} {value}", "place {name} {value}"),
    "replace": ("replace {name} with {value}", "turn {name} into {value}", "change {name} into {value}"),
    "background": (
        "change the background to {value}",
        "make the background {value}",
        "turn the background {value}",
        "set the background to {value}",
    ),
}
GROWTH_WORDS = {"large": ("large", "bigger", "larger"), "small": ("small", "smaller")}
COMPOSE_PROMPTS = (
    "put the objects from image 1 on the background of image 2",
    "place the shapes from image 1 on the background of image 2",
    "put the shapes of image 1 onto the background of image 2",
    "move the objects of image 1 onto the background from image 2",
)


def held_out(form: tuple[int, ...]) -> bool:
    """The rule that keeps a share of form combinations out of training: index sum ≡ 3 (mod 4)."""
    return sum(form) % 4 == 3


@dataclass(frozen=True)
class Style:
    """Surface choices shared by captions and edits."""

    capital: bool = False
    final: str = ""

    def apply(self, text: str) -> str:
        text = text[0].upper() + text[1:] if self.capital else text
        return text + self.final


CANONICAL = "canonical"  # `held=CANONICAL`: the grammar's first form only (the one wording per task of old)


def _draw(rng: random.Random, held: bool | str | None, build) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    """Draw form indices until the form is on the asked side of the hold-out rule (None: either;
    CANONICAL: every choice its first option, so the wording of checkpoints trained before the grammar)."""
    if held == CANONICAL:  # without drawing from `rng`: the stream of scenes is the one of old
        return tuple(0 for _ in build(random.Random(0)))
    while True:
        form = build(rng)
        if held is None or held_out(form) == held:
            return form


def join_objects(phrases: list[str], joiner: str) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + joiner + phrases[-1]


def caption(
    scene: Scene, rng: random.Random, *, held: bool | str | None = False, position_first: bool | None = None
) -> str:
    """A caption of the scene in one of the grammar's forms (held: only held-out forms, None: any).
    `position_first`: None draws it (POSITION_FIRST_SHARE), False never (the wording of checkpoints
    before round 3, drawing exactly what they were trained and measured on), True always."""
    if held == CANONICAL:
        return scene.caption()
    many = len(scene.things) > 1

    def build(r: random.Random) -> tuple[int, ...]:
        joiner = r.randrange(len(JOINERS)) if many else 0
        return (
            r.randrange(len(PREFIXES)), r.randrange(len(BODIES)), joiner, r.randrange(2), r.randrange(2),
            int(r.random() < POSITION_FIRST_SHARE) if position_first is None else int(position_first),
        )  # fmt: skip

    prefix, body, joiner, capital, final, first = _draw(rng, held, build)
    phrases = [thing.phrase(position_first=bool(first)) for thing in scene.things]
    objects = join_objects(phrases, JOINERS[joiner])
    text = PREFIXES[prefix] + BODIES[body].format(objects=objects, bg=scene.background)
    return Style(bool(capital), FINALS[final]).apply(text)


def object_name(scene: Scene, thing: Thing, *, short: bool = False) -> str:
    """ "the red circle" ("the circle" when short and the kind is unique), with its position
    when another object of the same name is in the scene."""
    if short and sum(other.kind == thing.kind for other in scene.things) == 1:
        return f"the {thing.kind}"
    twins = [other for other in scene.things if (other.colour, other.kind) == (thing.colour, thing.kind)]
    name = f"the {thing.colour} {thing.kind}"
    return name if len(twins) == 1 else f"{name} {position_phrase(thing.column, thing.row)}"


def instruction(
    kind: str, scene: Scene, rng: random.Random, *, name_of: Thing | None, value: str, held: bool | str | None = False,
    growth: str | None = None, destination: tuple[str, str] | None = None,
) -> str:  # fmt: skip
    """An edit instruction of `kind` in one of the grammar's forms.

    `value` is the canonical value (colour, size, object phrase); `growth` ("large"/"small")
    lets a resize say "bigger"; `destination` lets a move say "to the …" or "at the …".
    """
    verbs = EDIT_VERBS[kind]
    short_ok = name_of is not None and sum(other.kind == name_of.kind for other in scene.things) == 1
    size_words = GROWTH_WORDS[growth] if growth else (value,)

    def build(r: random.Random) -> tuple[int, ...]:
        return (
            r.randrange(len(verbs)), r.randrange(2) if short_ok else 0, r.randrange(len(size_words)),
            r.randrange(2), r.randrange(2),
        )  # fmt: skip

    verb, short, size_word, capital, final = _draw(rng, held, build)
    name = object_name(scene, name_of, short=bool(short)) if name_of is not None else ""
    if growth:
        value = size_words[size_word]
    if destination is not None:  # "move … to the left", "put … on the left"
        value = position_phrase(*destination, destination=verbs[verb].startswith("move"))
    text = verbs[verb].format(name=name, value=value)
    return Style(bool(capital), FINALS[final]).apply(text)


GATHER_PROMPTS = (  # {images}: "images 1 to 4" or "images 1, 2 and 3"
    "put the objects of {images} together on a {bg} background",
    "combine the shapes from {images} on a {bg} background",
    "the objects of {images} together on a {bg} background",
)
PICK_PROMPTS = (  # {picked}: "the circle from image 3 and the square from image 5"
    "put {picked} on the background of image {k}",
    "{picked} on the background of image {k}",
    "take {picked} and put them on the background of image {k}",
)
SWAP_PROMPTS = (
    "the background of image {k} with the objects of image {j}",
    "put the objects from image {j} on the background of image {k}",
    "place the shapes from image {j} onto the background of image {k}",
)
MARK_NAMES = ("the marked object", "the marked shape", "the object in the box")


def image_list(indices: list[int], as_range: bool) -> str:
    """ "images 1 to 4" (consecutive indices, `as_range`) or "images 1, 2 and 3"."""
    if as_range:
        return f"images {indices[0]} to {indices[-1]}"
    return "images " + join_objects([str(index) for index in indices], " and ")


def gather_prompt(rng: random.Random, indices: list[int], background: str, *, held: bool | str | None = False) -> str:
    consecutive = len(indices) > 2 and indices == list(range(indices[0], indices[-1] + 1))  # "images 1 and 2"

    def build(r: random.Random) -> tuple[int, ...]:
        return (r.randrange(len(GATHER_PROMPTS)), r.randrange(2) if consecutive else 1, r.randrange(2), r.randrange(2))

    prompt, listed, capital, final = _draw(rng, held, build)
    text = GATHER_PROMPTS[prompt].format(images=image_list(indices, as_range=not listed), bg=background)
    return Style(bool(capital), FINALS[final]).apply(text)


def pick_prompt(
    rng: random.Random, picks: list[tuple[str, int]], background_image: int, *, held: bool | str | None = False
) -> str:
    """`picks`: (object name, image index) of each object taken."""

    def build(r: random.Random) -> tuple[int, ...]:
        return (r.randrange(len(PICK_PROMPTS)), r.randrange(2), r.randrange(2))

    prompt, capital, final = _draw(rng, held, build)
    picked = join_objects([f"{name} from image {index}" for name, index in picks], " and ")
    text = PICK_PROMPTS[prompt].format(picked=picked, k=background_image)
    return Style(bool(capital), FINALS[final]).apply(text)


def swap_prompt(rng: random.Random, objects: int, background: int, *, held: bool | str | None = False) -> str:
    def build(r: random.Random) -> tuple[int, ...]:
        return (r.randrange(len(SWAP_PROMPTS)), r.randrange(2), r.randrange(2))

    prompt, capital, final = _draw(rng, held, build)
    text = SWAP_PROMPTS[prompt].format(j=objects, k=background)
    return Style(bool(capital), FINALS[final]).apply(text)


def marked_instruction(
    kind: str, rng: random.Random, *, value: str = "", destination: tuple[str, str] | None = None,
    held: bool | str | None = False,
) -> str:  # fmt: skip
    """An edit of the object the user marked: `kind` is remove, recolour or move."""
    verbs = EDIT_VERBS[kind]

    def build(r: random.Random) -> tuple[int, ...]:
        return (r.randrange(len(verbs)), r.randrange(len(MARK_NAMES)), r.randrange(2), r.randrange(2))

    verb, name, capital, final = _draw(rng, held, build)
    if destination is not None:
        value = position_phrase(*destination, destination=verbs[verb].startswith("move"))
    text = verbs[verb].format(name=MARK_NAMES[name], value=value)
    return Style(bool(capital), FINALS[final]).apply(text)


TONE_VERBS: dict[str, tuple[str, ...]] = {
    "swap": ("swap the colours of {a} and {b}", "exchange the colours of {a} and {b}",
             "switch the colours of {a} and {b}"),
    "all": ("make all the objects {value}", "turn all the shapes {value}", "make every shape {value}",
            "colour every object {value}"),
    "mono": ("make it black and white", "turn the picture black and white", "make the image black and white",
             "draw it in black and white"),
}  # fmt: skip


def tone_instruction(
    kind: str, rng: random.Random, *, names: tuple[Thing, Thing] | None = None, scene: Scene | None = None,
    value: str = "", held: bool | str | None = False,
) -> str:  # fmt: skip
    """A colour-tone edit of `kind` (swap, all, mono); a swap names its two objects as they are in `scene`."""
    verbs = TONE_VERBS[kind]

    def build(r: random.Random) -> tuple[int, ...]:
        return (r.randrange(len(verbs)), r.randrange(2) if names else 0, r.randrange(2), r.randrange(2))

    verb, short, capital, final = _draw(rng, held, build)
    a = b = ""
    if names is not None and scene is not None:
        a, b = (object_name(scene, thing, short=bool(short)) for thing in names)
    text = verbs[verb].format(a=a, b=b, value=value)
    return Style(bool(capital), FINALS[final]).apply(text)


def compose_prompt(rng: random.Random, *, held: bool | str | None = False) -> str:
    def build(r: random.Random) -> tuple[int, ...]:
        return (r.randrange(len(COMPOSE_PROMPTS)), r.randrange(2), r.randrange(2))

    prompt, capital, final = _draw(rng, held, build)
    return Style(bool(capital), FINALS[final]).apply(COMPOSE_PROMPTS[prompt])


# Groups:  group := lead what [" on a " C " background"] [final]
GROUP_LEADS = (
    "a series of {n} images of ",
    "{n} images of ",
    "a sequence of {n} frames of ",
    "a set of {n} pictures showing ",
)
NUMBER_NAMES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen".split()
GROUP_WHAT = {  # (names everything, leaves position/direction/colours to the defaults)
    "moving": ("a small {colour} {kind} moving from left to right", "a {colour} {kind} moving"),
    "growing": ("a {colour} {kind} in the center growing", "a {colour} {kind} growing"),
    "recolouring": ("a large {kind} in the center changing colour from {colour} to {end}", "a {kind} changing colour"),
}

GROUP_WHAT_REFERENCED = {  # a group of the object in one of the references: its kind and colour come from there
    "moving": ("the object from image {k} moving from left to right", "the object from image {k} moving"),
    "growing": ("the object from image {k} in the center growing", "the object from image {k} growing"),
    "recolouring": (
        "the object from image {k} in the center changing colour",
        "the object from image {k} changing colour",
    ),
}


@dataclass(frozen=True)
class GroupForm:
    lead: int
    number_word: bool
    minimal: bool
    names_background: bool
    capital: bool
    final: str

    @property
    def names_colour(self) -> bool:
        """Whether a recolouring prompt names its colours (the others always name the colour)."""
        return not self.minimal


def group_form(rng: random.Random, *, held: bool | str | None = False) -> GroupForm:
    if held == CANONICAL:
        return GroupForm(0, False, False, True, False, "")

    def build(r: random.Random) -> tuple[int, ...]:
        return (r.randrange(len(GROUP_LEADS)), r.randrange(2), r.randrange(2), r.randrange(4) > 0, r.randrange(2),
                r.randrange(2))  # fmt: skip

    lead, word, minimal, background, capital, final = _draw(rng, held, build)
    return GroupForm(lead, bool(word), bool(minimal), bool(background), bool(capital), FINALS[final])


def group_prompt(
    form: GroupForm, motion: str, count: int, kind: str, colour: str, end: str, background: str,
    source: int | None = None,
) -> str:  # fmt: skip
    """`source`: the reference image whose object the group shows ("the object from image 2")."""
    number = NUMBER_NAMES[count] if form.number_word else str(count)
    if source is not None:
        what = GROUP_WHAT_REFERENCED[motion][form.minimal].format(k=source)
    else:
        what = GROUP_WHAT[motion][form.minimal].format(colour=colour, kind=kind, end=end)
    what = "an " + what[2:] if what.startswith("a ") and what[2] in "aeiou" else what
    text = GROUP_LEADS[form.lead].format(n=number) + what
    if form.names_background:
        text += f" on a {background} background"
    return Style(form.capital, form.final).apply(text)
