"""The serve command: options, the assistant factory, and refusals before anything is loaded."""

import socket

import pytest
import typer
from typer.testing import CliRunner

from llmga.errors import InvalidInputError
from llmga.serve import cli
from llmga.serve.cli import _factory, _without_opts, serve


def command_app():
    app = typer.Typer()
    app.command()(_without_opts(serve))
    return app


def test_help_lists_the_options():
    result = CliRunner().invoke(command_app(), ["--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--data-dir", "--token", "--workers", "--max-pending", "--factory"):
        assert option in result.output
    assert "--opts" not in result.output


def test_a_public_address_without_a_token_is_refused_before_loading(monkeypatch):
    monkeypatch.delenv("LLMGA_TOKEN", raising=False)
    result = CliRunner().invoke(command_app(), ["--host", "0.0.0.0", "--factory", "builtins:print"])
    assert isinstance(result.exception, InvalidInputError) and "token" in str(result.exception)


def test_a_taken_port_is_refused(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with pytest.raises(InvalidInputError, match="cannot listen"):
            cli._bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_the_factory_comes_from_the_option_or_the_model_options():
    from llmga.serve.testing import double_assistant

    assert _factory("llmga.serve.testing:double_assistant", None) is double_assistant

    class Options:
        def build(self):
            return "assistant"

    assert _factory(None, Options())() == "assistant"
    for bad in ("no_colon", "llmga.nowhere:make", "llmga.serve.testing:missing"):
        with pytest.raises(InvalidInputError, match="factory"):
            _factory(bad, None)


def test_options_reach_the_server_config(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(cli, "run_server", lambda config, factory: seen.update(config=config, factory=factory))
    CliRunner().invoke(command_app(), ["--port", "0", "--data-dir", str(tmp_path), "--workers", "2",
                                       "--max-pending", "5", "--max-upload-mb", "1", "--token", "t",
                                       "--factory", "llmga.serve.testing:double_assistant"])
    config = seen["config"]
    assert (config.port, config.data, config.workers, config.max_pending, config.token) == (0, str(tmp_path), 2, 5, "t")
    assert config.limits.max_image_bytes == 2**20
