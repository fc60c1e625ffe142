"""Settings are defined once (qa.config): the environment, the CLI's options and the docs' table all come from it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import get_args

import click
import pytest
from click.testing import CliRunner

from qa.cli.main import main
from qa.cli.options import plain, setting_option
from qa.config import ENV_VARS, MODES, SETTINGS, Mode, Settings, build_precision, settings_table
from qa.errors import ConfigError, IndexNotFound
from qa.index.info import index_info
from qa.index.manifest import Manifest

ROOT = Path(__file__).resolve().parents[1]


def test_the_configuration_page_holds_the_table_made_from_the_definitions():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    start = page.index("| variable | setting |")
    assert page[start : page.index("\n\n", start) + 1] == settings_table()


def test_every_field_is_a_setting_with_its_own_variable_and_help():
    names = [f.name for f in dataclasses.fields(Settings)]
    assert list(SETTINGS) == names
    assert len(set(ENV_VARS.values())) == len(names)
    for name, spec in SETTINGS.items():
        assert spec.env == ENV_VARS[name] and spec.env.startswith("QA_") and spec.help, name
        assert f"`{spec.env}`" in settings_table()


@pytest.mark.parametrize(
    "name", [name for name, spec in SETTINGS.items() if spec.kind == "float" and (spec.low, spec.high) != (None, None)]
)
def test_a_bounded_number_refuses_nan(name):
    # NaN compares false with every bound, so a check written as "below low or above high" would let it through.
    with pytest.raises(ConfigError, match=f"{SETTINGS[name].env}: .* got nan"):
        Settings.from_env({SETTINGS[name].env: "nan"})


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"QA_PORT": "9000"}, ("port", 9000)),
        ({"QA_EMBED_TITLE": "off"}, ("embed_title", False)),
        ({"QA_LOG_FORMAT": " Json "}, ("log_format", "json")),
        (
            {"QA_CORS_ORIGINS": "https://a.example, https://b.example"},
            ("cors_origins", ("https://a.example", "https://b.example")),
        ),
        ({"QA_INDEX_DIR": "elsewhere"}, ("index_dir", Path("elsewhere"))),
        ({"QA_RELOAD_INTERVAL": "0.5"}, ("reload_interval", 0.5)),
        ({"QA_RAY_WORKERS": ""}, ("ray_workers", None)),  # an empty variable is unset
        ({"QA_PROGRESS": " JSON "}, ("progress", "json")),
    ],
)
def test_each_variable_is_parsed_by_its_setting(environ, expected):
    name, value = expected
    assert getattr(Settings.from_env(environ), name) == value


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"port": 0}, "port must be between 1 and 65535, got 0"),
        ({"chunk_size": 4, "chunk_overlap": 0}, "chunk size must be at least 8 tokens, got 4"),
        ({"candidates": 0}, "candidates must be positive, got 0"),
        ({"fusion_window": -1}, "fusion window must not be negative, got -1"),
        ({"keyword_feedback": 5.0}, "keyword feedback must be between 0 and 4, got 5.0"),
        ({"header_timeout": 0.0}, "header timeout must be over 0 and at most 3600 seconds, got 0.0"),
        ({"html_content": "some"}, "HTML content must be one of main, all, got 'some'"),
        ({"ray": "nowhere"}, "a Ray address is local, auto or ray://host:port, got 'nowhere'"),
        ({"ray_workers": 0}, "Ray workers must be between 1 and 1024, got 0"),
        ({"top_k": 101}, "top_k must be between 1 and 100, got 101"),
    ],
)
def test_a_value_out_of_its_definition_is_refused_with_the_settings_message(changes, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        dataclasses.replace(Settings(), **changes).check()


def test_the_modes_are_one_literal_type():
    assert MODES == get_args(Mode) == ("hybrid", "dense", "keyword")
    assert SETTINGS["mode"].choices == MODES


@pytest.mark.parametrize(
    "asked, recorded, built",
    [
        ("fp32", "int8", "fp32"),  # asked for: wins, and rebuilds an index of the other precision
        (None, "fp32", "fp32"),  # an existing index keeps its own
        (None, None, "int8"),  # a new index: the default
        ("int8", None, "int8"),
    ],
)
def test_a_build_embeds_at_the_precision_asked_else_the_indexs_own_else_int8(asked, recorded, built):
    assert build_precision(asked, recorded) == built


def _command(*decorators) -> click.Command:
    def run(**values):
        click.echo(json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in values.items()}))

    for decorator in reversed(decorators):
        run = decorator(run)
    return click.command()(run)


def test_an_option_made_from_a_setting_has_its_flag_type_variable_and_help():
    command = _command(
        setting_option("index_dir", "--index"), setting_option("port"), setting_option("mode"), setting_option("top_k")
    )
    by_name = {param.name: param for param in command.params}
    assert by_name["index_dir"].opts == ["--index"] and by_name["index_dir"].envvar == "QA_INDEX_DIR"
    port = by_name["port"].type
    assert isinstance(port, click.IntRange) and (port.min, port.max) == (1, 65535)
    assert list(by_name["mode"].type.choices) == list(MODES)
    assert all(param.default is None for param in command.params)  # Settings.from_env fills in the rest
    assert by_name["port"].help.endswith("[env QA_PORT; default: 8000].")
    assert by_name["index_dir"].help == "Index directory [env QA_INDEX_DIR; default: embeddings]."
    assert "--index PATH" in CliRunner().invoke(command, ["--help"]).output
    result = CliRunner().invoke(command, ["--port", "9000"], env={"QA_MODE": "dense", "QA_INDEX_DIR": None})
    assert json.loads(result.output) == {"index_dir": None, "port": 9000, "mode": "dense", "top_k": None}
    assert CliRunner().invoke(command, ["--port", "0"]).exit_code == 2


def test_help_shows_the_docs_markdown_as_plain_text():
    linked = "see [distributed](distributed.md#ray); `qa serve`"
    assert plain(linked) == "see distributed (docs/distributed.md); qa serve"
    assert plain("skipped: [documents.md](documents.md)") == "skipped: docs/documents.md"


def test_every_settings_option_of_qa_names_its_variable_in_help():
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and param.name in SETTINGS and param.help and "[env " in param.help:
                assert f"[env {ENV_VARS[param.name]};" in param.help, (command.name, param.name)


def test_index_info_describes_the_index_from_its_manifest_and_store(seeds_index):
    info = index_info(seeds_index)
    manifest = Manifest.read(seeds_index)
    described = info.as_dict()
    assert described["index_dir"] == str(seeds_index.absolute()) and described["model"] == manifest.model
    assert len(described["documents"]) == manifest.counts["documents"]
    assert sum(doc["chunks"] for doc in described["documents"]) == manifest.counts["chunks"]
    assert described["segments"] == (len(manifest.segments) or 1)


def test_index_info_of_no_index_says_there_is_none(tmp_path):
    with pytest.raises(IndexNotFound):
        index_info(tmp_path / "none")


def test_a_served_index_is_built_with_the_settings_then_left_alone(tmp_path):
    from qa.library import ensure_served_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tea.txt").write_text("Green tea is steeped at eighty degrees for two minutes.", encoding="utf-8")
    (corpus / "bread.txt").write_text("Sourdough bread rises overnight in a cool kitchen.", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "idx", chunk_size=64, chunk_overlap=8, embed_title=False, precision="fp32")
    report, reason = ensure_served_index(settings, corpus=corpus, precision=None, html_content=None)
    assert report is not None and reason and report.documents == 2
    manifest = Manifest.read(settings.index_dir)
    assert (manifest.chunking["size"], manifest.chunking["overlap"], manifest.precision) == (64, 8, "fp32")
    # Nothing changed: nothing is built, and the recorded corpus is found without being named.
    assert ensure_served_index(settings, corpus=None, precision=None, html_content=None) == (None, None)
