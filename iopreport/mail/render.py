"""Night summary -> HTML and plain text (Jinja2 templates in ``templates/mail/``).

The templates are looked up first in the project's ``paths.templates_dir``
(a site may restyle its mail) and then in the packaged skeleton, so a project
made before the mail existed still renders. Images are referenced through an
``image_src`` function: ``cid:`` URLs in e-mails, ``data:`` URIs in the site's
copy.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from iopreport.mail.summary import NightSummary, QuantityLine, SourceLine
from iopreport.stokes import Estimate

HTML_TEMPLATE = "mail/summary.html.j2"
TEXT_TEMPLATE = "mail/summary.txt.j2"

#: How each quantity is shown: label, unit, scale from stored units, decimals.
DISPLAY = {
    "mag": ("mag", "", 1.0, 2),
    "p": ("p", " %", 100.0, 1),
    "chi": ("χ", "°", 1.0, 0),
}


@dataclass(frozen=True)
class Rendered:
    """The two alternatives of one summary."""

    html: str
    text: str


def _number(quantity: str, value: float, *, signed: bool = False) -> str:
    _, unit, scale, decimals = DISPLAY[quantity]
    sign = "+" if signed else ""
    return f"{value * scale:{sign}.{decimals}f}{unit}"


def fmt_estimate(estimate: Estimate | None, quantity: str) -> str:
    """``15.23 ± 0.02``, ``4.5 ± 0.3 %``, ``35 ± 2°`` (and ``n=3`` when averaged)."""
    if estimate is None:
        return "–"
    _, unit, scale, decimals = DISPLAY[quantity]
    text = f"{estimate.value * scale:.{decimals}f}"
    if estimate.error is not None:
        error = estimate.error * scale
        places = decimals if round(error, decimals) > 0 else decimals + 1
        text += f" ± {error:.{places}f}"
    text += unit
    if estimate.n > 1:
        text += f" (n={estimate.n})"
    return text


def fmt_change(line: QuantityLine) -> str:
    """Change since the previous night, with that night: ``+0.12 since 2024-10-07``."""
    if line.change is None:
        return "first night"
    return f"{_number(line.quantity, line.change, signed=True)} since {line.previous_night}"


def fmt_longterm(line: QuantityLine) -> str:
    """Long-term centre, spread and tonight's offset in spreads."""
    if line.longterm_centre is None:
        return f"{line.history_nights} earlier night(s)"
    text = (
        f"{_number(line.quantity, line.longterm_centre)} ± "
        f"{_number(line.quantity, line.longterm_spread or 0.0)} "
        f"over {line.history_nights} nights"
    )
    if line.spread_offset is not None:
        text += f" ({line.spread_offset:+.1f}σ)"
    return text


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def cid_src(line: SourceLine) -> str:
    """The ``cid:`` URL of a source's plot in an e-mail (see :mod:`iopreport.mail.message`)."""
    return f"cid:{line.plot_cid}"


def inline_src(line: SourceLine) -> str:
    """The plot as a ``data:`` URI (the site's copy)."""
    return data_uri(line.plot_png or b"")


@functools.cache
def _environment(templates_dir: str) -> jinja2.Environment:
    from iopreport.skeleton import skeleton_dir

    loaders = [jinja2.FileSystemLoader(templates_dir)]
    packaged = skeleton_dir() / "templates"
    if Path(templates_dir).resolve() != packaged.resolve():
        loaders.append(jinja2.FileSystemLoader(str(packaged)))
    environment = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["estimate"] = fmt_estimate
    environment.filters["change"] = fmt_change
    environment.filters["longterm"] = fmt_longterm
    environment.globals["quantity_label"] = lambda q: DISPLAY[q][0]
    return environment


def render_summary(
    summary: NightSummary,
    templates_dir: Path | str,
    *,
    image_src: Callable[[SourceLine], str] = cid_src,
) -> Rendered:
    """Render ``summary`` to HTML and plain text.

    Parameters
    ----------
    summary : NightSummary
        What to show (already limited to a subscriber's sources if need be).
    templates_dir : path-like
        The project's templates folder (``paths.templates_dir``).
    image_src : callable
        Gives the ``src`` of a source's plot: :func:`cid_src` for e-mails,
        :func:`inline_src` for a self-contained page.
    """
    environment = _environment(str(templates_dir))
    context = {"summary": summary, "image_src": image_src}
    html = environment.get_template(HTML_TEMPLATE).render(context)
    text = environment.get_template(TEXT_TEMPLATE).render(context)
    return Rendered(html=html, text=text)
