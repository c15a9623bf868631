"""Rendering shared by PR comments, job summaries, artifacts and the CLI.

``markdown``: tables, comment-size fitting; ``html``: self-contained pages;
``plots``: matplotlib (Agg) figures as base64 PNG; ``validation``: the
validation report in JSON, Markdown and HTML.
"""
