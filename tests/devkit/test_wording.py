"""The prompt grammar: every wording trained, a rule that holds some combinations out, and the
grammar users read names every verb the tasks use."""

from __future__ import annotations

import random

from seqdream_devkit import tasks, wording


def test_every_verb_and_option_is_trained_and_some_combinations_are_held_out() -> None:
    rng = random.Random(0)
    trained = [tasks.edit(rng, kind).prompt.lower() for kind in tasks.EDITS for _ in range(300)]
    for kind, verbs in wording.EDIT_VERBS.items():
        for verb in verbs:
            first = verb.split(" ")[0]
            assert any(prompt.startswith(first) for prompt in trained), (kind, verb)
    held = {tasks.text_to_image(rng, held=True).prompt for _ in range(300)}
    seen = {tasks.text_to_image(rng, held=False).prompt for _ in range(300)}
    assert held and seen and not (held & seen)  # different combinations, never the same text


def test_the_hold_out_rule_splits_forms() -> None:
    forms = [(a, b, c) for a in range(4) for b in range(4) for c in range(2)]
    out = [form for form in forms if wording.held_out(form)]
    assert 0 < len(out) < len(forms) / 2


def test_the_grammar_names_every_verb_and_lead() -> None:
    for verbs in wording.EDIT_VERBS.values():
        for verb in verbs:
            assert f'"{verb.split(" ")[0]}' in wording.GRAMMAR, verb
    for lead in wording.GROUP_LEADS:
        assert lead.replace("{n}", "N") in wording.GRAMMAR, lead


def test_group_prompts_leave_out_what_defaults_cover() -> None:
    rng = random.Random(3)
    minimal = [g for g in (tasks.sequence(rng, held=None) for _ in range(200)) if "background" not in g[0].prompt]
    assert minimal  # some prompts name no background: they get the default one
    for group in minimal:
        assert tasks.DEFAULT_BACKGROUND == "white"
        assert all(frame.target.getpixel((0, 0)) == (245, 245, 245) for frame in group)


def test_a_models_grammar_names_the_tone_edits_only_when_it_was_trained_on_them() -> None:
    tone = wording.grammar(("t2i", "edit", "marked", "tone"))
    before = wording.grammar(("t2i", "edit", "marked"))
    for verbs in wording.TONE_VERBS.values():
        for verb in verbs:
            words = verb.split(" {")[0]  # "swap the colours of", "make it black and white"
            assert all(word in tone for word in words.split()), verb
    assert "swap" in tone and "black and white" in tone
    assert "swap" not in before and "black and white" not in before and "marked" in before
    assert "marked" not in wording.grammar(("t2i", "edit"))


def test_a_models_grammar_names_groups_of_a_references_object_only_when_trained_on_them() -> None:
    with_them = wording.grammar(("t2i", "sequence", "sequence_ref"))
    assert "the object from image" in with_them
    assert "the object from image" not in wording.grammar(("t2i", "sequence", "marked", "tone"))
    added = with_them.removeprefix(wording.grammar(("t2i", "sequence")))  # the lines these groups add
    rng = random.Random(2)
    for _ in range(30):  # every wording the task draws is one those lines name
        prompt = tasks.sequence(
            rng, count=rng.randint(2, 14), held=None, references=rng.randint(*tasks.GROUP_REFERENCES)
        )[0].group_prompt
        what = prompt.lower().split("the object from image ")[1].split(" on a ")[0].rstrip(".")
        assert f'" {what.split(" ", 1)[1]}"' in added, what
