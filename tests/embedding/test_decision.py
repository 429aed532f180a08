"""The retrieve-or-generate decision: a calibrated score threshold with a frequency multiplier."""

import math

from llmga.embedding.decision import Decision


def test_the_calibration_separates_high_scores_from_low_ones():
    scores = [0.95, 0.9, 0.92, 0.88, 0.5, 0.55, 0.6, 0.45]
    labels = [True] * 4 + [False] * 4
    decision = Decision.fit(scores, labels)
    assert 0.6 < decision.threshold < 0.88
    assert decision.retrieve(0.93) and not decision.retrieve(0.5)
    assert decision.probability(0.95) > 0.9 > 0.1 > decision.probability(0.45)


def test_the_frequency_multiplier_scales_the_odds_of_retrieving():
    decision = Decision(slope=10.0, bias=-7.0)  # threshold 0.7
    assert not decision.retrieve(0.65)
    assert decision.retrieve(0.65, frequency=math.exp(1.0))  # odds e^-0.5 times e: retrieved
    assert not decision.retrieve(0.99, frequency=0)  # zero: always paint
    assert math.isclose(decision.probability(0.7, frequency=3.0), 0.75)


def test_one_kind_of_case_gives_a_constant_decision_and_it_round_trips(tmp_path):
    always = Decision.fit([0.1, 0.2], [True, True])
    assert always.retrieve(0.0) and not Decision.fit([0.9], [False]).retrieve(1.0)
    always.accuracy = 0.75
    always.save(tmp_path)
    assert Decision.load(tmp_path) == always and Decision.load(tmp_path / "none") is None
