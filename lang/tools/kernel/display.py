"""A REPL Output as Jupyter display data: what a notebook shows where the terminal prints text.

`bundles(output)` gives one MIME bundle per thing to show, each with the
terminal's text as its `text/plain` (so a front end without HTML, and the
tests, still read what the REPL prints):

    Report (:compare, :sweep)   an HTML table; a sweep adds its growth exponents and the
                                log-log plot (SVG, with the [plot] extra, matplotlib)
    Code (:transform)           the term highlighted, its types in the header comments
    Drawing (:graph)            the graph as SVG when Graphviz's `dot` is installed; else the
                                DOT text with a line that says so
    Transcript (:step)          the two columns of the stepper as tables, with buttons that
                                reveal one step at a time (all steps show where scripts do not run)
    anything else               the text

The HTML is self-contained (inline styles, no external files), so an
executed notebook keeps its pictures.
"""
from __future__ import annotations

import html
import os
import tempfile
import uuid
from typing import Any

from ..compare import Report
from ..graph import Drawing, NoGraphviz, svg
from ..repl.session import Code, Output
from ..repl.tokens import tokenize
from ..report import errors, exponent_metrics, exponent_rows, plot, table_rows
from ..stepper import HEADERS, MAX_ROWS, TITLES, Transcript, factoring_rows, naive_rows, preamble, summary

# the terminal highlighter's colours (lang/tools/repl/lexer.py), as CSS
COLOURS = {"keyword": "color:#5f87ff;font-weight:bold", "literal": "color:#d787ff", "number": "color:#d7875f",
           "type": "color:#00af87", "tvar": "color:#00af87;font-style:italic", "string": "color:#87af5f",
           "operator": "color:#af87d7", "comment": "color:#808080;font-style:italic",
           "error": "background:#870000;color:#fff"}
TABLE = "border-collapse:collapse;font-family:monospace;font-size:12px"
CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:pre"


def bundles(out: Output) -> list[dict[str, str]]:
    """The display data of an output (an error is not displayed here: the kernel sends it as an error)."""
    rich = out.rich
    match rich:
        case Report():
            return report_bundles(out.text, rich)
        case Code():
            return [{"text/plain": out.text, "text/html": code_html(rich.text)}]
        case Drawing():
            return [drawing_bundle(out.text, rich)]
        case Transcript():
            return [{"text/plain": out.text, "text/html": transcript_html(rich)}]
        case _:
            return [{"text/plain": out.text}] if out.text else []


def _e(text: Any) -> str:
    return html.escape(str(text))


def _table(headers: list[str], rows: list[list[str]], caption: str = "") -> str:
    head = "".join(f'<th style="{CELL};border-bottom:2px solid #888">{_e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f'<td style="{CELL}">{_e(c)}</td>' for c in row) + "</tr>" for row in rows)
    cap = f'<caption style="text-align:left;font-family:monospace;padding:4px 0">{_e(caption)}</caption>' \
        if caption else ""
    return f'<table style="{TABLE}">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def report_bundles(text: str, report: Report) -> list[dict[str, str]]:
    """The compare table as HTML; for a sweep, the growth exponents and the log-log plot."""
    caption = text.split("\n", 1)[0].lstrip("- ") if text.startswith("--") else ""
    headers, rows = table_rows(report)
    parts = [_table(headers, rows, caption)]
    parts += [f'<pre style="color:#a00">{_e(e)}</pre>' for e in errors(report)]
    if report.exponents:
        parts.append(_table(["mode", *exponent_metrics(report)], exponent_rows(report),
                            "growth exponents (slope of log cost against log n)"))
    out = [{"text/plain": text, "text/html": "".join(parts)}]
    if report.exponents:
        picture = plot_svg(report)
        out.append({"text/plain": "(the log-log plot needs matplotlib: pip install 'dl-lang[plot]')"}
                   if picture is None else {"text/plain": "log-log plot of the sweep", "image/svg+xml": picture})
    return out


def plot_svg(report: Report) -> str | None:
    """The sweep's log-log plot as SVG text (lang/tools/report.py's plot); None without matplotlib."""
    fd, path = tempfile.mkstemp(suffix=".svg")
    os.close(fd)
    try:
        if plot(report, path) is None:
            return None
        with open(path, encoding="utf-8") as f:
            return f.read()
    finally:
        os.remove(path)


def code_html(text: str) -> str:
    """dl text highlighted with the terminal's colours, in a <pre>."""
    spans = []
    for t in tokenize(text):
        style = COLOURS.get(t.kind)
        spans.append(f'<span style="{style}">{_e(t.text)}</span>' if style else _e(t.text))
    return f'<pre style="font-size:12px;line-height:1.35">{"".join(spans)}</pre>'


def drawing_bundle(text: str, drawing: Drawing) -> dict[str, str]:
    """The graph as SVG, or its DOT text with the reason there is no picture."""
    try:
        return {"text/plain": text, "image/svg+xml": svg(drawing.dot)}
    except NoGraphviz as e:
        note = f"-- {e}"
        return {"text/plain": note + "\n" + drawing.dot,
                "text/html": f"<p><em>{_e(str(e))}</em></p><pre>{_e(drawing.dot)}</pre>"}


def transcript_html(t: Transcript) -> str:
    """The stepper's two columns as tables, with buttons that reveal one step at a time."""
    ident = "dlstep" + uuid.uuid4().hex[:10]
    f = t.factoring.backward
    left = factoring_rows(f)
    right = naive_rows(t.naive.backward) if t.naive else [("", "did not finish", "", "")]
    ends = (min(len(f.steps), MAX_ROWS) + 1, min(len(t.naive.backward.steps), MAX_ROWS) + 1 if t.naive else 1)
    steps = max(ends) - 1

    def column(title: str, headers: tuple, rows: list, end: int) -> str:
        """A column's table; row k appears at step k, the sinks' rows when its pass is over (`end`)."""
        head = "".join(f'<th style="{CELL};text-align:left;border-bottom:2px solid #888">{_e(h)}</th>'
                       for h in headers)
        body = []
        for row in rows:
            order = int(row[0]) if row[0].isdigit() else end
            cells = "".join(f'<td style="{CELL};text-align:{"right" if i == 0 else "left"}">{_e(c)}</td>'
                            for i, c in enumerate(row))
            body.append(f'<tr data-step="{order}">{cells}</tr>')
        return (f'<div style="margin-right:24px"><div style="font-weight:bold;font-family:monospace">{_e(title)}'
                f'</div><table style="{TABLE}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
                "</table></div>")

    notes = "".join(f"<div>{_e(x)}</div>" for x in preamble(t))
    foot = "".join(f"<div>{_e(x)}</div>" for x in summary(t))
    buttons = (f'<div style="margin:6px 0"><button onclick="{ident}(-1)">&#9664; step</button> '
               f'<button onclick="{ident}(1)">step &#9654;</button> '
               f'<button onclick="{ident}(0)">all</button> <span id="{ident}-at"></span></div>')
    script = f"""<script>
(function() {{
  var root = document.getElementById("{ident}"), last = {steps + 1}, at = 1;
  function show() {{
    root.querySelectorAll("tr[data-step]").forEach(function(r) {{
      r.style.display = Number(r.dataset.step) <= at ? "" : "none"; }});
    document.getElementById("{ident}-at").textContent = at > {steps} ? "all steps" : "step " + at + " of {steps}";
  }}
  window["{ident}"] = function(d) {{ at = d === 0 ? last : Math.max(1, Math.min(last, at + d)); show(); }};
  show();
}})();
</script>"""
    return (f'<div id="{ident}" style="font-family:monospace;font-size:12px">{notes}{buttons}'
            f'<div style="display:flex;align-items:flex-start">'
            f'{column(TITLES["factoring"], HEADERS["factoring"], left, ends[0])}'
            f'{column(TITLES["naive"], HEADERS["naive"], right, ends[1])}</div>{foot}</div>{script}')
