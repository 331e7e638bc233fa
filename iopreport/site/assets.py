"""What every page is made with besides the store: the template and static
folders (the project's first, then the packaged skeleton's), plotly.js of the
installed ``plotly`` package, and the hash of all of it with this package's code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from iopreport import __version__, urls
from iopreport.config import Config

#: plotly.js inside the installed ``plotly`` package (copied into static/ at build time).
PLOTLY_JS_IN_PACKAGE = ("package_data", "plotly.min.js")


def _skeleton_subdir(name: str) -> Path | None:
    from iopreport.skeleton import skeleton_dir

    try:
        folder = skeleton_dir() / name
    except Exception:  # installed without a skeleton: only the project's folder is used
        return None
    return folder if folder.is_dir() else None


def asset_folders(config: Config) -> tuple[list[Path], list[Path]]:
    """Template and static folders: the project's first, then the packaged skeleton's."""
    templates = [config.paths.templates_dir]
    statics = [config.paths.static_dir]
    for name, found in (("templates", templates), ("static", statics)):
        fallback = _skeleton_subdir(name)
        if fallback and fallback.resolve() != found[0].resolve():
            found.append(fallback)
    return templates, statics


def static_files(statics: list[Path]) -> dict[str, Path]:
    """Static files by their path under static/, the project's over the skeleton's."""
    files: dict[str, Path] = {}
    for folder in reversed(statics):  # the project's files win
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if path.is_file() and relative not in ("plotly.min.js", "README.md"):
                files[relative] = path
    return files


def plotly_js_path() -> Path:
    """plotly.min.js of the installed ``plotly`` package."""
    import plotly

    path = Path(plotly.__file__).parent.joinpath(*PLOTLY_JS_IN_PACKAGE)
    if not path.is_file():
        from iopreport.errors import IopreportError

        raise IopreportError(f"plotly.min.js not found in the plotly package ({path})")
    return path


def code_hash(templates: list[Path], static_files: dict[str, Path]) -> str:
    """Hash of everything every page depends on: code, templates, static files, plotly."""
    import plotly

    digest = hashlib.sha256(f"{__version__} plotly {plotly.__version__}".encode())
    package = Path(__file__).parent
    code = [*sorted(package.glob("*.py")), Path(urls.__file__)]
    template_files = [
        p for folder in templates if folder.is_dir() for p in sorted(folder.rglob("*"))
    ]
    for path in [*code, *template_files, *static_files.values()]:
        if path.is_file():
            digest.update(str(path.name).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]
