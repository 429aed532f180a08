"""Real-weight tests: each runs when its environment variables point at local checkpoints, else skips naming them.

    LLMGA_SD15=/models/stable-diffusion-v1-5            # diffusers folder or single .safetensors
    LLMGA_SD15_INPAINT=/models/stable-diffusion-inpainting
    LLMGA_SDXL=/models/stable-diffusion-xl-base-1.0
    LLMGA_CONTROLNET=/models/sd-controlnet-canny          # an SD 1.5 canny ControlNet
    LLMGA_CLIP=/models/clip-vit-large-patch14             # a CLIPModel folder, for scoring pictures against text
    LLMGA_ORIGINAL=/models/llmga-vicuna-7b-v1.5-full-finetune   # an LLMGA original-layout MLLM
    LLMGA_VISION_TOWER=/models/clip-vit-large-patch14-336 # its CLIP vision tower
    LLMGA_ORIGINAL_TEMPLATE=vicuna_v1                     # only for Llama-2/Vicuna checkpoints
    LLMGA_LLAVA=/models/llava-1.5-7b-hf                   # a transformers-native LLaVA

    HF_HUB_OFFLINE=1 python -m pytest -m real tests/real -v
"""

import os
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.real


def real(*names: str) -> list[Path]:
    """The paths the environment variables ``names`` give; skip the test naming the missing ones."""
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.skip(f"set {', '.join(missing)} to a local checkpoint to run this real-weight test")
    return [Path(os.environ[n]).expanduser() for n in names]


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class ClipJudge:
    """CLIP similarity of pictures and texts (a CLIPModel folder from LLMGA_CLIP)."""

    def __init__(self, path: Path) -> None:
        from transformers import AutoProcessor, CLIPModel

        self.model = CLIPModel.from_pretrained(path, local_files_only=True).eval().to(device())
        self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)

    @torch.no_grad()
    def scores(self, image, texts: list[str]) -> list[float]:
        inputs = self.processor(text=texts, images=[image], return_tensors="pt", padding=True).to(device())
        return self.model(**inputs).logits_per_image[0].tolist()


@pytest.fixture(scope="session")
def judge() -> ClipJudge:
    (path,) = real("LLMGA_CLIP")
    return ClipJudge(path)
