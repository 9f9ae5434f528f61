"""Self-contained HTML reports of a placement (`trnsched solve --json`) or a
replay (`trnsched simulate -o`): one page, all CSS and SVG inline, no script and
no network needed to view it."""
from trnsched.report.html import render_html, render_simulation_html

__all__ = ["render_html", "render_simulation_html"]
