"""The procedural prompt-refinement set and the refinement measurement."""

import json

from llmga.data.refine_demo import SUBJECTS, build, description, held_out, split_subjects
from llmga.eval.refine import content_words, is_faithful, score
from llmga.protocol import parse_reply


def test_held_out_subjects_never_appear_in_training(tmp_path):
    train, test = split_subjects(seed=0)
    for kind in SUBJECTS:
        assert {n for n, _ in train[kind]}.isdisjoint({n for n, _ in test[kind]}) and test[kind]
    records = json.loads(build(tmp_path / "d.json", n=300, seed=0).read_text())
    text = " ".join(turn["value"] for r in records for turn in r["conversations"]).lower()
    for kind in test:
        for noun, _ in test[kind]:
            assert f" {noun} " not in text.replace(",", " ").replace(".", " ")


def test_training_answers_keep_the_request_and_vary_the_details(tmp_path):
    records = json.loads(build(tmp_path / "d.json", n=400, seed=1).read_text())
    details = set()
    for record in records:
        question, answer = (t["value"] for t in record["conversations"])
        reply = parse_reply(answer)
        if reply.prompts:
            request, detail = reply.prompts[0].split(",", 1)
            assert request.lower() in question.lower()  # the request, word for word, opens the prompt
            details.add(detail)
        else:
            assert reply.text and "<gen_img>" not in answer
    assert len(details) > 100  # not one stock phrase
    assert build(tmp_path / "again.json", n=400, seed=1).read_text() == (tmp_path / "d.json").read_text()


def test_scoring_counts_format_faithfulness_and_variety():
    items = held_out(20, seed=0)
    perfect = ["Sure! <gen_img>" + description(r) + "</gen_img>" if r else "Plainly, 4." for _, r in items]
    scores = score(items, perfect)
    assert (scores.well_formed, scores.faithful) == (1.0, 1.0)
    assert scores.distinct_details > 0.5

    swapped = []
    for _, r in items:
        if r is None:
            swapped.append("<gen_img>a picture</gen_img>")  # a question answered with an image: malformed
        else:
            noun_free = r.phrase.split(" ", 2)[-1]  # drops the attribute word
            swapped.append(f"<gen_img>a Bengal {noun_free}, misty light</gen_img><gen_img>extra</gen_img>")
    bad = score(items, swapped)
    assert bad.well_formed == 0.0 and bad.faithful == 0.0


def test_faithfulness_needs_every_content_word():
    request = held_out(50, seed=0)
    request = next(r for _, r in request if r is not None)
    assert is_faithful(description(request), request)
    first = content_words(request.phrase)[0]
    assert not is_faithful(description(request).replace(first, "something"), request)
