"""The state of one site build and the units it renders.

:class:`SiteBuild` holds the generation being written, the published manifest
and the new one: it keeps a unit (a page and the files made beside it) whose
inputs' hash is unchanged, and writes pages and files into the generation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from iopreport import urls
from iopreport.config import Config
from iopreport.site import publish, sourcecontext
from iopreport.site.assets import asset_folders, code_hash, static_files
from iopreport.site.templating import PAGE_TEMPLATES, jinja_environment
from iopreport.store.models import utcnow


def _root(path: str) -> str:
    """Relative prefix from a page to the site root (``sources/x.html`` → ``../``)."""
    return "../" * path.count("/")


def inputs_hash(*parts) -> str:
    """Hash of JSON-able parts (what a unit is made from), 32 hex digits."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


class SiteBuild:
    """State of one build: the generation written, the published manifest and the new one."""

    def __init__(self, config: Config, *, full: bool) -> None:
        self.config = config
        self.full = full
        self.site = Path(config.paths.site_dir)
        self.old = publish.Manifest() if full else publish.Manifest.read(self.site)
        self.new = publish.Manifest()
        self.made: set[str] = set()  # folders known to exist in the generation written
        self.extra: list[str] = []  # files made on every build (not part of a unit)
        self.rendered = 0
        self.kept = 0
        templates, statics = asset_folders(config)
        self.static_files = static_files(statics)
        self.code = code_hash(templates, self.static_files)
        self.env = jinja_environment(templates)
        for name in PAGE_TEMPLATES:  # compiled once here, not again in every worker process
            self.env.get_template(name)
        self.generated = utcnow().strftime("%Y-%m-%d %H:%M UTC")
        self.sources: dict[int, sourcecontext.SourceInfo] = {}
        publish.sweep(self.site)
        self.target = publish.prepare_target(self.site, full=full)
        self.out = self.target.folder

    def wanted(self, key: str, inputs) -> str | None:
        """Keep unit ``key`` when its inputs are unchanged.

        The generation written may hold the unit already (nothing to do); otherwise
        its files are hard-linked from the published site. Returns the unit's hash
        when it must be rendered, None when it was kept.
        """
        digest = inputs_hash(self.code, inputs)
        held = self.target.holds.units.get(key)
        if held and held.get("hash") == digest and publish.holds_unit(self.out, held["files"]):
            self.new.units[key] = held
            self.kept += 1
            return None
        previous = self.old.units.get(key)
        if (
            previous
            and previous.get("hash") == digest
            and publish.keep_unit(self.site, self.out, previous["files"], self.made)
        ):
            self.new.units[key] = previous
            self.kept += 1
            return None
        return digest

    def page(self, path: str, template: str, **values) -> str:
        """Render ``template`` to ``path`` (relative to the site root); returns ``path``."""
        html = self.env.get_template(template).render(
            root=_root(path), page_path=path, generated=self.generated, urls=urls, **values
        )
        self.write(path, html)
        return path

    def write(self, path: str, content: str | bytes) -> None:
        """Write a file of the generation anew (never in place: it may be a hard link)."""
        target = self.out / path
        parent = str(target.parent)
        if parent not in self.made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.made.add(parent)
        publish.remove_file(target)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")

    def finish(self) -> None:
        """Remove what the generation held and no longer needs; write its manifest."""
        self.new.state["files"] = sorted(set(self.extra))
        publish.remove_stale(self.out, self.target.holds, self.new)
        self.new.write(self.out)


@dataclass(frozen=True)
class PageUnit:
    """A page to render: its manifest key, input hash, kind and what it is made from."""

    key: str
    digest: str
    kind: str  # "source" | "night"
    spec: tuple
