"""Bundled training recipes and the one YAML reader of every config file.

The recipes ship as YAML files in ``raw_synth/configs`` (``configs/`` at the repository root is the
same folder): ``train-isp-cpu.yaml``, ``train-isp-paper.yaml``, ``train-denoiser-cpu.yaml`` and
``train-denoiser-paper.yaml``. Every training command takes ``--config NAME|FILE``: a bundled name
(``cpu``, ``paper``) or a YAML path. :func:`recipe_path` resolves it, :func:`read_yaml` reads any
config file with one-line errors naming the file.

Example:
    >>> recipe_path("cpu", "denoiser").name
    'train-denoiser-cpu.yaml'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml

from raw_synth.errors import RawSynthError

__all__ = ["RECIPE_DIR", "RECIPE_NAMES", "TASK_RECIPE_NAMES", "recipe_path", "read_yaml"]

#: Folder of the bundled recipes.
RECIPE_DIR = Path(__file__).resolve().parent / "configs"

#: Names every training command accepts for ``--config``.
RECIPE_NAMES: tuple[str, ...] = ("cpu", "paper")
#: The bundled recipe names of each task: the shared ones, and ``finetune`` (start from the bundled
#: denoiser) for the denoiser.
TASK_RECIPE_NAMES: dict[str, tuple[str, ...]] = {"isp": RECIPE_NAMES, "denoiser": (*RECIPE_NAMES, "finetune")}


def recipe_path(source: str | Path, task: Literal["isp", "denoiser"]) -> Path:
    """The YAML file of a recipe: an existing path as given, or the bundled recipe of that name.

    Args:
        source: A YAML path, or a bundled name of the task (:data:`TASK_RECIPE_NAMES`); a file of
            that name in the working folder wins over the bundled one.
        task: ``"isp"`` or ``"denoiser"``: which family of bundled recipes a name refers to.

    Raises:
        RawSynthError: Neither an existing file nor a bundled name (one line listing the names).
    """
    path = Path(source)
    if path.is_file():
        return path
    names = TASK_RECIPE_NAMES[task]
    if isinstance(source, str) and source in names:
        return RECIPE_DIR / f"train-{task}-{source}.yaml"
    raise RawSynthError(f"{source}: training recipe not found (give a YAML file or one of {', '.join(names)})")


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """Read a YAML config file (an empty file is ``{}``); never executes code (``safe_load``).

    The caller checks the document's shape (a mapping of sections) with its own messages.

    Args:
        path: The file.
        what: What the file is, for the messages (``"camera profile"``: ``"X: camera profile file
            not found"``).

    Raises:
        RawSynthError: Missing or unreadable file, or invalid YAML (with the line), as one line
            naming the file.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RawSynthError(f"{file}: {what} file not found") from None
    except UnicodeDecodeError:
        raise RawSynthError(f"{file}: not a text file") from None
    except OSError as error:
        raise RawSynthError(f"{file}: cannot read {what} ({error.strerror or error})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RawSynthError(f"{file}: not valid YAML{where}") from None
    return {} if data is None else data
