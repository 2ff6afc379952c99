"""Renders an analysis and a study folder: HTML, Markdown, figures, terminal text.

It reads a study folder (``synthaug.study.layout``/``config``/``records``) but never runs a job.
"""
