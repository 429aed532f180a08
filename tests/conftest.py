"""Shared test set-up: offline, one torch thread (steady timings on a busy CPU), and the tiny model stacks.

The tiny stacks are built once per run, on first use, by :class:`TinyModels`
(fixture ``tiny``); tests read them and never write into them (a test that
damages a model builds its own). Tests of the shipped models' quality carry the
``shipped`` marker.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


class TinyModels:
    """Tiny random stacks in the real on-disk formats (:mod:`llmga.testing`), each built once under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[str, Path] = {}

    def _once(self, name: str, build) -> Path:
        if name not in self._built:
            self._built[name] = build(self.root / name)
        return self._built[name]

    def sd(self, variant: str = "sd15") -> Path:
        """A Stable Diffusion pipeline directory: sd15, sd15-inpaint, sd2, sdxl or sdxl-inpaint."""
        from llmga.testing import build_tiny_sd

        return self._once(variant, lambda path: build_tiny_sd(path, variant=variant))

    def controlnet(self, base: str = "sd15") -> Path:
        """A canny ControlNet (SD 1.5) or depth ControlNet (SDXL) made for the ``base`` pipeline."""
        from llmga.testing.tiny_controlnet import build_tiny_controlnet

        name = "sd15-controlnet-canny" if base == "sd15" else f"{base}-controlnet-depth"
        return self._once(name, lambda path: build_tiny_controlnet(path, base_path=None if base == "sd15" else self.sd(base)))

    def causal_lm(self) -> Path:
        from llmga.testing import build_tiny_causal_lm

        return self._once("lm", build_tiny_causal_lm)

    def llava(self) -> Path:
        from llmga.testing import build_tiny_llava

        return self._once("llava", build_tiny_llava)

    def clip_vision(self) -> Path:
        from llmga.testing import build_tiny_clip_vision

        return self._once("vision", build_tiny_clip_vision)

    def world_llava(self) -> Path:
        """A world assistant (LLaVA format) composed of the tiny LM and vision tower."""
        from llmga.train.world_llava import build_world_llava

        return self._once("world-llava", lambda path: build_world_llava(path, self.clip_vision(),
                                                                        base=str(self.causal_lm())))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyModels:
    return TinyModels(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def world_llava_trained(tiny, tmp_path_factory) -> Path:
    """A short LoRA stage-1 run of the tiny world assistant on the world sets (projector in modules_to_save)."""
    from llmga.data.world_sets import build_world_sets
    from llmga.train.stage1 import Stage1Config, train_stage1

    root = tmp_path_factory.mktemp("world-llava-run")
    data = build_world_sets(root / "data" / "world.json", n=24, seed=0)
    return train_stage1(Stage1Config(model=str(tiny.world_llava()), data=[str(data)], out=str(root / "run"),
                                     lora=True, lora_rank=4, max_steps=3, batch_size=4, lr=5e-2, warmup_steps=0,
                                     save_every=100, threads=1))


@pytest.fixture(scope="session")
def world_parts(tmp_path_factory) -> Path:
    """A tiny world CLIP and VAE trained for a step or two (enough to wire a painter, not to paint)."""
    from llmga.train.world_clip import ClipConfig, train_clip
    from llmga.train.world_vae import train_vae

    root = tmp_path_factory.mktemp("world-parts")
    train_clip(root / "clip", ClipConfig(hidden=32, layers=1, heads=2, steps=2, batch_size=8), log=lambda _: None)
    train_vae(root / "vae", steps=1, batch_size=2, eval_n=8, log=lambda _: None)
    return root


def pytest_collection_modifyitems(config, items):
    """Full-size architecture checks run only when asked for (``-m fullsize``): they take minutes and GBs."""
    if "fullsize" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="full-size architecture check: run with -m fullsize")
    for item in items:
        if "fullsize" in item.keywords:
            item.add_marker(skip)


def _server(kind: str, request):
    """A throwaway server of ``kind`` (llmga.testing.servers), started once per run on first use.

    Skipped where the program (or the ``scale`` extra: psycopg, redis, rq) is not installed, unless
    ``LLMGA_REQUIRE_SERVERS`` is set (CI sets it, so these tests cannot be skipped there by accident).
    """
    import importlib.util

    from llmga.testing import servers

    try:
        missing = [name for name in ("psycopg", "psycopg_pool", "redis", "rq") if not importlib.util.find_spec(name)]
        if missing:
            raise servers.ServerMissing(f"{', '.join(missing)} not installed (pip install -e '.[scale]')")
        server = getattr(servers, kind)().start()
    except servers.ServerMissing as exc:
        if os.environ.get("LLMGA_REQUIRE_SERVERS"):
            raise
        pytest.skip(f"{exc}; these tests need it")
    request.addfinalizer(server.close)
    return server


@pytest.fixture(scope="session")
def postgres(request):
    """A PostgreSQL server for the run (``.url``; ``stop()``/``start()`` for outages)."""
    return _server("PostgresServer", request)


@pytest.fixture(scope="session")
def redis_server(request):
    """A Redis server for the run, with an append-only file (``.url``; ``stop()``/``start()`` for outages)."""
    return _server("RedisServer", request)


@pytest.fixture
def pg_url(postgres):
    """A PostgreSQL URL whose tables live in a schema of their own (a fresh, empty store per test)."""
    import uuid

    import psycopg

    schema = f"t{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return f"{postgres.url}?options=-csearch_path%3D{schema}"
