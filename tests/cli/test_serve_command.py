"""The serve command: options, the assistant factory, and refusals before anything is loaded."""

import socket

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmga.cli import app
from llmga.cli import serve as serve_command
from llmga.cli.serve import assistant_factory
from llmga.errors import InvalidInputError
from llmga.serve.server import _bind


def serve(*args):
    return CliRunner().invoke(app, ["serve", *args])


def test_help_lists_the_options():
    result = serve("--help")
    assert result.exit_code == 0
    for option in ("--host", "--port", "--data-dir", "--token", "--workers", "--max-pending", "--factory", "--brain",
                   "--painter"):
        assert option in result.output
    assert "--opts" not in result.output


def test_a_public_address_without_a_token_is_refused_before_loading(monkeypatch):
    monkeypatch.delenv("LLMGA_TOKEN", raising=False)
    result = serve("--host", "0.0.0.0", "--factory", "builtins:print")
    assert isinstance(result.exception, InvalidInputError) and "token" in str(result.exception)


def test_a_taken_port_is_refused(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with pytest.raises(InvalidInputError, match="cannot listen"):
            _bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_the_factory_comes_from_the_option_or_the_model_options():
    from llmga.testing.doubles import double_assistant

    assert assistant_factory("llmga.testing.doubles:double_assistant", None) is double_assistant

    class Options:
        def build(self, saves=True, gallery=None, lazy=True):
            return ("assistant", gallery, "lazy" if lazy else "loaded") if not saves else "writes to ./outputs"

    # the studio's painters load before it serves, not on first use (its workers must not load at once)
    assert assistant_factory(None, Options())() == ("assistant", None, "loaded")
    assert assistant_factory(None, Options(), Path("data/images"))() == ("assistant", Path("data/images"), "loaded")
    for bad in ("no_colon", "llmga.nowhere:make", "llmga.testing.doubles:missing"):
        with pytest.raises(InvalidInputError, match="factory"):
            assistant_factory(bad, None)


def test_options_reach_the_server_config(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("llmga.serve.server.run_server", lambda config, factory: seen.update(config=config,
                                                                                          factory=factory))
    serve("--port", "0", "--data-dir", str(tmp_path), "--workers", "2", "--max-pending", "5", "--max-upload-mb", "1",
          "--token", "t", "--factory", "llmga.testing.doubles:double_assistant")
    config = seen["config"]
    assert (config.port, config.data, config.workers, config.max_pending, config.token) == (0, str(tmp_path), 2, 5, "t")
    assert config.limits.max_image_bytes == 2**20
    assert serve_command.serve  # the command is registered from this module
