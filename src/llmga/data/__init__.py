"""Training data for stage 1: the four LLMGA sets, StableLLaVA-style synthetic data, the mixer.

Typical use::

    from llmga.brain import load_brain
    from llmga.data import AnswerCache, Captioner, Problems, build_refinement, open_source

    problems = Problems("skip")
    samples = open_source("captions_train2017.json", images="train2017").samples(problems)
    captioner = Captioner(load_brain("http://127.0.0.1:8000/v1"), AnswerCache("answers.sqlite"))
    print(build_refinement(samples, captioner, "data/refine", seed=0, problems=problems).summary())

The command line is ``llmga data`` (:mod:`llmga.data.cli`).
"""

from .builders import build_editing, build_inpainting, build_refinement, build_similar
from .cache import AnswerCache, CachedBrain, image_digest
from .captioner import Captioner
from .edit_writer import EditPair, EditPairWriter, clean_pairs, parse_pairs
from .mixer import PAPER_RATIOS, MixInput, mix, parse_mix_input
from .records import make_record, read_records, validate_record, write_records
from .report import BrokenSampleError, Problems, Report
from .sources import Sample, Source, open_source
from .stablellava import ABILITIES, StableLLaVA

__all__ = [
    "ABILITIES",
    "PAPER_RATIOS",
    "AnswerCache",
    "BrokenSampleError",
    "CachedBrain",
    "Captioner",
    "EditPair",
    "EditPairWriter",
    "MixInput",
    "Problems",
    "Report",
    "Sample",
    "Source",
    "StableLLaVA",
    "build_editing",
    "build_inpainting",
    "build_refinement",
    "build_similar",
    "clean_pairs",
    "image_digest",
    "make_record",
    "mix",
    "open_source",
    "parse_mix_input",
    "parse_pairs",
    "read_records",
    "validate_record",
    "write_records",
]
