"""Reports: a self-contained offline HTML report, and a short terminal summary."""

from alliance.report.html import write_html_report

__all__ = ["write_html_report"]
