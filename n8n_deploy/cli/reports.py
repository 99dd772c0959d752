"""Reports CI systems read natively: JUnit XML, GitHub workflow annotations and the
GitHub job summary.  Built from check results, which never hold a key; every text is
passed through the key redactor once more all the same.

JUnit: one ``<testsuite>`` of one ``<testcase>`` per key x server (classname the key,
name the server), a ``<failure>`` with the message, hint and failed checks, ``<skipped>``
never (a check that could not run is a failure: it is not a pass).  GitHub: one
``::error title=...::...`` line per failed check, escaped as GitHub requires (``%``, CR,
LF in messages; also ``:`` and ``,`` in properties).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING

from n8n_deploy.base.status import check_words
from n8n_deploy.base.text import sanitize

if TYPE_CHECKING:
    from n8n_deploy.apikeys.check import KeyReport, TargetResult

SUITE_NAME = "n8n-deploy apikey test"


def _name(report: KeyReport) -> str:
    return report.key_name or "(key from stdin)"


def _where(item: TargetResult) -> str:
    if item.target is not None:
        return item.target.server or item.target.url
    return item.result.server_url or "(no server)"


def _clean(text: str) -> str:
    """Sanitised (base.text.sanitize: newlines kept), and without the characters XML 1.0
    cannot hold."""
    return "".join(
        ch if ch in "\t\n\r" or (ord(ch) >= 0x20 and ch not in "\ufffe\uffff") else "?"
        for ch in sanitize(text, newlines=True)
    )


def junit_xml(reports: Sequence[KeyReport]) -> str:
    """The results as a JUnit XML document (a str ending in a newline)."""
    cases = [(report, item) for report in reports for item in report.results]
    failures = sum(1 for _, item in cases if not item.result.ok)
    elapsed = sum(item.result.elapsed for _, item in cases)
    suites = ET.Element(
        "testsuites",
        name=SUITE_NAME,
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        time=f"{elapsed:.3f}",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=SUITE_NAME,
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{elapsed:.3f}",
    )
    for report, item in cases:
        result = item.result
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_clean(_name(report)),
            name=_clean(_where(item)),
            time=f"{result.elapsed:.3f}",
        )
        if result.ok:
            continue
        failed = [c for c in result.checks if c.status == "failed"]
        details = [result.message]
        if result.hint:
            details.append(f"Fix: {result.hint}")
        details += [f"{check.name}: {check.message}" for check in failed]
        details.append(f"exit status {int(result.exit_status)} ({check_words(result.exit_status)})")
        failure = ET.SubElement(
            case, "failure", message=_clean(result.message), type=result.outcome.value
        )
        failure.text = _clean("\n".join(details))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(reports: Sequence[KeyReport]) -> list[str]:
    """One ``::error`` workflow command per failed check."""
    lines = []
    for report in reports:
        for item in report.results:
            result = item.result
            if result.ok:
                continue
            title = (
                f"API key '{_name(report)}' on {_where(item)}: {check_words(result.exit_status)}"
            )
            message = result.message + (f". {result.hint}" if result.hint else "")
            lines.append(
                f"::error title={_escape_property(sanitize(title))}::"
                f"{_escape_data(sanitize(message, newlines=True))}"
            )
    return lines


def _cell(text: str) -> str:
    return sanitize(text).replace("|", "\\|")


def github_summary(reports: Sequence[KeyReport]) -> str:
    """A Markdown table of every check, for ``$GITHUB_STEP_SUMMARY``."""
    cases = [(report, item) for report in reports for item in report.results]
    passed = sum(1 for _, item in cases if item.result.ok)
    lines = [
        f"### {SUITE_NAME}: {passed} of {len(cases)} passed",
        "",
        "| key | server | result | message |",
        "|---|---|---|---|",
    ]
    for report, item in cases:
        result = item.result
        verdict = "✅ valid" if result.ok else f"❌ {check_words(result.exit_status)}"
        lines.append(
            f"| {_cell(_name(report))} | {_cell(_where(item))} | {verdict} | "
            f"{_cell(result.message)} |"
        )
    return "\n".join(lines) + "\n\n"
