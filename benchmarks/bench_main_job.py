"""The main job as users run it, against the raw work inside it, and where the rest goes.

``llmga generate "Draw a blue square."`` (the offline default; its models
already converted into the cache by a first, untimed run) is run as a fresh
process ``--repeats`` times: its median wall time is the figure users see
(target <= 8 s on the 2-core machine). Beside it, ``--repeats`` fresh
processes each time the job's parts one after the other, so no part is
counted twice:

- python: the interpreter starting and exiting (``python -c pass``);
- imports: ``llmga.cli`` and what the job loads its models with (diffusers'
  Stable Diffusion pipeline, and llama.cpp, which runs the default brain);
- load: the default brain and painters loaded from the cache;
- raw work: the loaded brain answering the job's request (greedy, the job's
  token limit) plus the loaded diffusers pipeline painting the prompt it
  wrote (the job's steps, guidance and size).

What is left (the job's wall less these) is llmga's own work around them
(the command line, the assistant loop, writing the picture, the interpreter's
exit), less what the job overlaps: it imports the painter's libraries in the
background while the brain answers, so this can be negative.
The environment matters: transformers imports scipy when it is installed
(~0.8 s here), and llmga does not depend on it; the first line printed says
which Python ran and whether scipy was there. Measure in a virtual
environment made by the README's install command to see what users see.
Printed last: ``ratio: job wall / raw work``. ``--versus OPTIONS`` also runs the job with
those options, each repeat beside one of the default's, and prints the ratio of their walls.
Run: python benchmarks/bench_main_job.py [--versus "--brain-engine transformers"]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

REQUEST = "Draw a blue square."


def run_job(out: str, options: str = "") -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "llmga", "generate", REQUEST, "--out", out, *shlex.split(options)],
                          capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"), check=False)
    if done.returncode:
        sys.exit(f"the main job failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def python_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


PARTS = """
import json, sys, time
start = time.perf_counter()
import torch
import llmga.cli
import llama_cpp
from diffusers import StableDiffusionPipeline
imported = time.perf_counter()

from llmga.assistant import REFINE_REQUEST
from llmga.brain import BrainRequest, complete, load_brain
from llmga.conversation import Conversation
from llmga.painter.suite import PainterSuite
from llmga.protocol import OPEN_TAG, parse_reply
from llmga.profiles import load_profile
from llmga.settings import SamplingSettings

profile = load_profile(None)
brain = load_brain(profile.brain)
suite = PainterSuite.load(profile.painter, profile.inpaint_painter, [], edit=profile.edit_painter)
loaded = time.perf_counter()

pipe, paint = suite.text_to_image.pipeline, profile.paint
conversation = Conversation.for_brain(brain)
conversation.add_user(REFINE_REQUEST.format(text=sys.argv[1]))
messages, _ = conversation.to_messages(False)
greedy = SamplingSettings(temperature=0, max_new_tokens=profile.sampling.max_new_tokens)
reply = complete(brain, BrainRequest(messages, settings=greedy, prefill=OPEN_TAG))
prompt = (parse_reply(reply, brain.end_markers).prompts or [sys.argv[1]])[0]
pipe(prompt, num_inference_steps=paint.steps, guidance_scale=paint.guidance, width=paint.width,
     height=paint.height, generator=torch.Generator().manual_seed(paint.seed or 0))
done = time.perf_counter()
print(json.dumps({"imports": imported - start, "load": loaded - imported, "raw": done - loaded}))
"""


def parts() -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", PARTS, REQUEST], capture_output=True, text=True, check=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--versus", help="options to time the job with beside the default's, as one string")
    args = parser.parse_args()
    out = tempfile.mkdtemp()
    scipy = importlib.util.find_spec("scipy") is not None
    print(f"python: {sys.executable} (scipy {'installed: transformers imports it' if scipy else 'not installed'})")
    run_job(out)  # converts the models into the cache once (not timed)
    walls, versus = [], []
    if args.versus:
        run_job(out, args.versus)
    for _ in range(args.repeats):
        walls.append(run_job(out))
        if args.versus:
            versus.append(run_job(out, args.versus))
    runs = [parts() for _ in range(args.repeats)]
    python = statistics.median(python_seconds() for _ in range(args.repeats))
    wall = statistics.median(walls)
    part = {name: statistics.median(r[name] for r in runs) for name in ("imports", "load", "raw")}
    print(f"main job `llmga generate {REQUEST!r}`, median of {args.repeats} fresh processes: {wall:.2f} s")
    print(f"  python {python:.2f} s, imports {part['imports']:.2f} s, loading the brain and painters "
          f"{part['load']:.2f} s, raw work (brain generate + pipeline call) {part['raw']:.2f} s, "
          f"the rest {wall - python - sum(part.values()):.2f} s")
    if versus:
        print(f"with {args.versus}: {statistics.median(versus):.2f} s; "
              f"default / that: {wall / statistics.median(versus):.2f}")
    print(f"ratio: {wall / part['raw']:.2f}")


if __name__ == "__main__":
    main()
