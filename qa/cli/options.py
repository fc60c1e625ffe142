"""Click options made from the settings' definitions (qa.config.Settings): flag, type, help, default, variable."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from qa.config import SETTINGS, shown_default

F = TypeVar("F", bound=Callable[..., Any])

# Markdown links (relative to docs/) and code spans, written for docs/configuration.md, read as plain text in --help.
_LINK = re.compile(r"\[([^\]]+)\]\(([^)#]+)[^)]*\)")


def _link(match: re.Match) -> str:
    words, page = match.group(1), "docs/" + match.group(2)
    return page if words == match.group(2) else f"{words} ({page})"


def plain(text: str) -> str:
    """``text`` without markdown: a link becomes its words and the docs page, a code span its contents."""
    return _LINK.sub(_link, text).replace("`", "")


def setting_option(
    name: str,
    *flags: str,
    envvar: bool = True,
    help: str | None = None,
    shown: str | None = None,
    **click_kwargs: Any,
) -> Callable[[F], F]:
    """A click option for the setting ``name``, made from its definition in ``qa.config.Settings``.

    The option is named ``name`` in the command's arguments and defaults to None, so ``Settings.from_env`` fills in
    the variable or the default. Its flag is ``--name-with-dashes`` unless ``flags`` are given; its type is the
    setting's choices, a path, or a whole number within the setting's bounds; its help ends with the variable and
    the default.

    Args:
        envvar: also let click read the variable, so the command sees its value (an option whose variable is
            left to ``Settings.from_env``, which names it in any error, passes False).
        help: what the option means for this command, when it says more than the setting's own help.
        shown: the default this command uses, when it is not the setting's.
        click_kwargs: any other ``click.option`` argument, which wins over the one made here (``type``, say).
    """
    spec = SETTINGS[name]
    declared = flags or ("--" + name.replace("_", "-"),)
    options: dict[str, Any] = {"default": None, "metavar": spec.metavar}
    if spec.choices is not None:
        options["type"] = click.Choice(spec.choices)
        options["metavar"] = None  # click lists the choices
    elif spec.kind == "path":
        options["type"] = click.Path(path_type=Path)
    elif spec.kind == "int":
        low, high = spec.low, spec.high
        if low is None and high is None:
            options["type"] = int
        else:
            options["type"] = click.IntRange(
                None if low is None else int(low), None if high is None else int(high), min_open=spec.low_open
            )
    elif spec.kind == "float":
        options["type"] = float
    if envvar:
        options["envvar"] = spec.env
    text = plain(help or spec.help)
    options["help"] = f"{text[:1].upper()}{text[1:]} [env {spec.env}; default: {plain(shown or shown_default(name))}]."
    options.update(click_kwargs)
    return click.option(*declared, name, **options)
