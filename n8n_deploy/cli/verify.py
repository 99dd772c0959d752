"""``n8n-deploy apikey test`` and ``apikey rotate``: the commands that verify keys against
their servers: a pre-deploy gate CI can trust, and a way to replace a key without ever
leaving a team without a working one.

``cli.app`` registers them on the ``apikey`` group.  The work is done by
``n8n_deploy.apikeys.check`` / ``.rotate`` and ``n8n_deploy.n8n.probe``; this module only
parses options and renders results.  Nothing heavy is imported at module level.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from n8n_deploy.base.dates import MAX_DAYS, human_date
from n8n_deploy.base.errors import N8nDeployError, OperationFailed, UsageError
from n8n_deploy.base.names import lookup_name
from n8n_deploy.base.settings import SERVER_URL_ENV
from n8n_deploy.base.status import (
    ExitStatus,
    check_words,
    explain,
    most_serious,
    severity_order,
)
from n8n_deploy.base.text import counted
from n8n_deploy.cli import prompts
from n8n_deploy.cli.json_writer import print_json
from n8n_deploy.cli.options import (
    JsonOption,
    NoEmojiOption,
    description_option,
    key_name_argument,
    server_option,
)
from n8n_deploy.cli.output import (
    ProgressBar,
    error_line,
    icon,
    note,
    one_screen,
    print_table,
    say,
    warn,
)
from n8n_deploy.cli.root import report_error
from n8n_deploy.cli.state import state
from n8n_deploy.cli.views import NO_URL
from n8n_deploy.n8n import scopes
from n8n_deploy.n8n.limits import DEFAULT_TIMEOUT, MAX_CONCURRENCY, MAX_PER_SERVER, MAX_TIMEOUT

if TYPE_CHECKING:
    from n8n_deploy.apikeys.check import CheckOptions, KeyReport, Target, TargetResult
    from n8n_deploy.apikeys.rotate import RotationReport
    from n8n_deploy.n8n.results import Check, ValidationResult

S = ExitStatus
EXIT_STATUS_HELP = (
    "Exit status: "
    + explain(
        (S.SUCCESS, ""),
        (S.FAILED, "unknown key, no server, a stored server URL that cannot be used"),
        (S.KEY_REJECTED, "401, or 403: no workflow:list scope"),
        (S.UNREACHABLE, "DNS, refused, TLS, timeout"),
        (S.INVALID_FORMAT, "not an n8n key"),
        (S.KEY_EXPIRED, "or expiring within --min-days"),
        (S.UNEXPECTED_RESPONSE, "404, 5xx, redirect, not JSON"),
        (S.KEY_INACTIVE, ""),
    )
    + f". Several checks: the most serious failure, in the order {severity_order()}."
)

TEST_EPILOG = (
    "Server: --server-url, else --server, else every server the key is linked to "
    f"(all must pass), else {SERVER_URL_ENV}; with none of these the key is not tested "
    f"(exit {int(S.FAILED)}). The key's own checks (format, expiry, --min-days) need no "
    "server and come first. Redirects are never followed. " + EXIT_STATUS_HELP
)

ROTATE_EPILOG = (
    f"Any failure leaves OLD untouched and active. Exit status: {int(S.SUCCESS)} rotated; "
    f"{int(S.FAILED)} refused before any test (unknown OLD, NEW's name or key already "
    f"stored, OLD linked to no server); {int(S.USAGE)} bad name or description; "
    + explain((S.INVALID_FORMAT, ""), (S.KEY_EXPIRED, ""))
    + "; a failed test: "
    + explain((S.KEY_REJECTED, ""), (S.UNREACHABLE, ""), (S.UNEXPECTED_RESPONSE, ""))
    + " (the most serious when OLD has several servers). Running a failed rotation again "
    "with the same new key finishes it."
)

ServerOption = Annotated[
    str | None,
    server_option("Test against this stored server (its skip_ssl_verify setting applies)."),
]
ServerUrlOption = Annotated[
    str | None,
    typer.Option(
        "--server-url",
        metavar="URL",
        help="Test against this URL (a path prefix such as https://host/n8n is kept).",
        show_default=False,
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="S",
        min=0.1,
        max=MAX_TIMEOUT,
        help=f"Time budget of each check in seconds, retries included (at most {MAX_TIMEOUT:g}).",
    ),
]
SkipSslOption = Annotated[
    bool,
    typer.Option(
        "--skip-ssl-verify",
        help="Do not verify the server's TLS certificate (prefer SSL_CERT_FILE=ca.pem).",
    ),
]
MinDaysOption = Annotated[
    int,
    typer.Option(
        "--min-days",
        metavar="N",
        min=0,
        max=MAX_DAYS,
        help=f"Also fail (exit {int(ExitStatus.KEY_EXPIRED)}) a key that expires within N days.",
    ),
]


FORMATS = ("table", "plain", "json", "junit", "github")
RequireOption = Annotated[
    list[str] | None,
    typer.Option(
        "--require",
        metavar="SCOPE[,SCOPE...]",
        help="Also check that the key holds these scopes (repeatable), or a bundle: "
        f"'deploy' ({', '.join(scopes.DEPLOY)}) or 'read-only' "
        f"({', '.join(scopes.READ_ONLY)}). A missing scope fails (exit "
        f"{int(ExitStatus.KEY_REJECTED)}); one the server cannot tell fails (exit "
        f"{int(ExitStatus.FAILED)}) unless --allow-unknown-scopes.",
        show_default=False,
    ),
]
AllowUnknownOption = Annotated[
    bool,
    typer.Option(
        "--allow-unknown-scopes",
        help="Pass a required scope that the server can neither list (/api/v1/discover) "
        "nor show by a request that changes nothing.",
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="table (default), plain (no emoji, ASCII), json (as --json), junit (JUnit XML "
        "for CI test reports) or github (also GitHub workflow annotations and a job "
        "summary; automatic when GITHUB_ACTIONS=true).",
        show_default=False,
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        metavar="PATH",
        help="Write the --format junit report to PATH instead of stdout.",
        show_default=False,
    ),
]


def test(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        key_name_argument(
            "The stored key to test, or - to read a key from stdin (nothing is stored).",
            metavar="NAME|-",
        ),
    ] = None,
    all_keys: Annotated[
        bool,
        typer.Option(
            "--all",
            help=f"Test every active key against its linked servers, {MAX_CONCURRENCY} checks "
            f"at a time, at most {MAX_PER_SERVER} against one server "
            "(with --server: only the keys linked to that server).",
        ),
    ] = False,
    server: ServerOption = None,
    server_url: ServerUrlOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    skip_ssl_verify: SkipSslOption = False,
    min_days: MinDaysOption = 0,
    require: RequireOption = None,
    allow_unknown_scopes: AllowUnknownOption = False,
    output_format: FormatOption = None,
    output: OutputOption = None,
    json_output: JsonOption = False,
    no_emoji: NoEmojiOption = False,
) -> None:
    """Check that an API key works: its format and expiry, then one authenticated request
    (GET /api/v1/workflows?limit=1) to the server, and with --require the scopes a deploy
    needs (GET /api/v1/discover, or requests that change nothing). On success the key's
    last-used time is set. Human output on stdout; --json prints one object per server
    (an array when there are several, and always for --all), and one saying why when the
    key could not be tested at all (outcome not_found, inactive or not_tested)."""
    from n8n_deploy.apikeys import check

    report_format = _report_format(ctx, output_format, output, json_output=json_output)
    json_output = report_format.machine
    emoji = not no_emoji and report_format.name != "plain"
    options = _options(
        ctx,
        timeout=timeout,
        skip_ssl_verify=skip_ssl_verify,
        min_days=min_days,
        require=_required(require),
        allow_unknown_scopes=allow_unknown_scopes,
    )
    if all_keys:
        if name is not None:
            raise UsageError("Give a key name or --all, not both")
        if server_url is not None:
            raise UsageError(
                "--all tests keys against their stored servers; --server-url cannot be used",
                hint="Use --server NAME to test only the keys linked to that server",
            )
        progress = None if json_output else _Progress.at_a_terminal(emoji)
        try:
            with state(ctx).reading() as reader:  # a SQLite file: without SQLAlchemy
                plan = check.plan_all_checks(reader, server_name=server, options=options)
            reports = check.carry_out_all_checks(
                plan,
                state(ctx).database,
                options=options,
                on_done=progress,
                meanwhile=_load_the_store,
            )
        except check.CANNOT_RUN as error:
            if not json_output:
                report_format.extras([check.KeyReport.not_run(None, error)])  # the file too
                raise
            reports = [check.KeyReport.not_run(None, error)]
        finally:
            if progress is not None:
                progress.close()
        report_format.extras(reports)
        _finish_all(reports, json_output=json_output, emoji=emoji, report_format=report_format)
        return
    if name is None:
        raise UsageError(
            "Give the name of the key to test, - to read a key from stdin, or --all",
            hint="e.g. n8n-deploy apikey test prod_key",
        )
    key_name = None if name == "-" else lookup_name(name)
    # The report's first line, said as the checks against servers start (they may wait):
    # at a terminal it shows at once, as the reference's does.
    titled = _Title(f"Testing API key: {'from stdin' if name == '-' else name}", emoji)
    try:
        if key_name is None:
            secret = _read_secret(
                "-", what="the key to test", example="n8n-deploy apikey test - --server-url URL"
            )
            database = state(ctx).database() if server is not None else None
            report = check.check_secret(
                secret,
                database=database,
                server_name=server,
                server_url=server_url,
                options=options,
                on_start=None if json_output else titled,
            )
        else:
            report = check.check_stored_key(
                state(ctx).database(),
                key_name,
                server_name=server,
                server_url=server_url,
                options=options,
                on_start=None if json_output else titled,
            )
    except check.CANNOT_RUN as error:
        if not json_output:
            report_format.extras([check.KeyReport.not_run(key_name, error)])  # the file too
            raise
        report = check.KeyReport.not_run(key_name, error)
    report_format.extras([report])
    _finish_one(
        report,
        titled,
        json_output=json_output,
        emoji=emoji,
        report_format=report_format,
    )


def _required(values: list[str] | None) -> tuple[str, ...]:
    """The scopes --require asks for; a value that is neither a scope nor a bundle is a
    usage error."""
    try:
        wanted = scopes.expand(values or [])
    except ValueError as bad:
        raise UsageError(
            f"--require {bad}: not a scope (resource:operation, e.g. workflow:create) or a "
            f"bundle ({', '.join(scopes.BUNDLES)})",
            hint="e.g. --require deploy or --require workflow:list,tag:create",
        ) from None
    if values and not wanted:  # an empty $SCOPES in a CI job must not pass the gate
        raise UsageError(
            "--require names no scope", hint="e.g. --require deploy or --require workflow:list"
        )
    return wanted


class _ReportFormat:
    """What --format (or --json) asked for, and the reports that go beside the output."""

    def __init__(self, name: str, output: Path | None, github: bool, summary: str | None):
        self.name = name
        self.output = output
        self.github = github
        self.summary = summary

    @property
    def machine(self) -> bool:
        """Machine output on stdout (JSON, or JUnit XML): no table, no progress."""
        return self.name == "json" or (self.name == "junit" and self.output is None)

    def extras(self, reports: Sequence[KeyReport]) -> None:
        """JUnit to its file, GitHub annotations and summary; then the usual output."""
        from n8n_deploy.cli import reports as ci

        if self.name == "junit":
            document = ci.junit_xml(reports)
            if self.output is None:
                sys.stdout.write(document)
                sys.stdout.flush()
            else:
                _write_file(self.output, document)
        if self.github:
            # Workflow commands are read from stdout and stderr alike: stderr keeps a
            # JSON or XML stdout clean.
            stream = sys.stderr if self.machine else sys.stdout
            for line in ci.github_annotations(reports):
                stream.write(line + "\n")
            stream.flush()
            if self.summary:
                _append_file(Path(self.summary), ci.github_summary(reports))


def _report_format(
    ctx: typer.Context, name: str | None, output: Path | None, *, json_output: bool
) -> _ReportFormat:
    chosen = (name if name is not None else ("json" if json_output else "table")).strip().lower()
    if chosen not in FORMATS:
        raise UsageError(
            f"--format {name}: not a report format", hint=f"Use one of: {', '.join(FORMATS)}"
        )
    if json_output and chosen not in ("json",):
        raise UsageError(f"--json and --format {chosen} ask for two outputs; give one")
    if output is not None and chosen != "junit":
        raise UsageError("--output is for --format junit", hint="Add --format junit")
    if output is not None:
        _check_report_path(output)
    settings = state(ctx).settings
    github = chosen == "github" or settings.github_actions
    return _ReportFormat(chosen, output, github, settings.github_step_summary)


def _check_report_path(path: Path) -> None:
    """Refuse (usage error, before any check) an --output that names no file, or that
    names something a report would replace that is not a regular file: a folder, a
    symbolic link, a device (``/dev/full``), a pipe."""
    target = path.expanduser()
    if target.name in ("", ".", ".."):  # typer reads --output "" as "."
        raise UsageError(
            "--output names no file", hint="Give a file path, e.g. --output report.xml"
        )
    try:
        found = target.lstat()
    except OSError:
        return  # nothing there yet (a missing folder is said when the report is written)
    if not stat.S_ISREG(found.st_mode):
        what = "a folder" if stat.S_ISDIR(found.st_mode) else "not a regular file"
        raise UsageError(
            f"--output {target}: {what}; the report would replace it",
            hint="Give the path of a new file or of a report written before",
        )


def _write_file(path: Path, text: str) -> None:
    """Write a report whole (a temporary file moved into place) or not at all."""
    target = path.expanduser()
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        _check_report_path(target)  # again: it may have changed while the keys were checked
        os.replace(partial, target)
    except UsageError:
        partial.unlink(missing_ok=True)
        raise
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OperationFailed(
            f"Cannot write the report to {target}: {exc.strerror or exc}",
            hint="Give a path in a folder that exists and can be written",
        ) from None


def _append_file(path: Path, text: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        warn(f"Cannot append the job summary to {path}: {exc.strerror or exc}")


def _options(
    ctx: typer.Context,
    *,
    timeout: float,
    skip_ssl_verify: bool,
    min_days: float = 0,
    require: tuple[str, ...] | None = (),
    allow_unknown_scopes: bool = False,
) -> CheckOptions:
    """How to test, from the options and the settings (N8N_SERVER_URL, SSL_CERT_FILE/DIR)."""
    from n8n_deploy.apikeys.check import CheckOptions
    from n8n_deploy.n8n.probe import Trust

    settings = state(ctx).settings
    return CheckOptions(
        timeout=timeout,
        skip_ssl_verify=skip_ssl_verify,
        min_days=min_days,
        fallback_server_url=settings.server_url,
        trust=Trust(settings.ca_file, settings.ca_dir),
        require=require,
        allow_unknown_scopes=allow_unknown_scopes,
    )


def rotate(
    ctx: typer.Context,
    old: Annotated[str, key_name_argument("The stored key being replaced.", metavar="OLD")],
    name: Annotated[
        str,
        typer.Option(
            "--name", metavar="NEW", help="Name to store the new key under.", show_default=False
        ),
    ],
    new_key: Annotated[
        str | None,
        typer.Argument(
            metavar="NEWKEY|-",
            help="The new key; - reads stdin. Omitted: asked for without echo at a "
            "terminal, read from stdin otherwise.",
            show_default=False,
        ),
    ] = None,
    description: Annotated[str | None, description_option("Description of the new key.")] = None,
    discard_on_failure: Annotated[
        bool,
        typer.Option(
            "--discard-on-failure",
            help="When a test fails, do not store the new key (default: store it, so it "
            "can be tested again).",
        ),
    ] = False,
    delete_old: Annotated[
        bool,
        typer.Option("--delete-old", help="Delete OLD instead of deactivating it."),
    ] = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    skip_ssl_verify: SkipSslOption = False,
    json_output: JsonOption = False,
    no_emoji: NoEmojiOption = False,
) -> None:
    """Replace OLD by a new key: test the new key against every server OLD is linked to
    and, only when every test passes, store it (linked to the same servers) and deactivate
    OLD, in one transaction. On failure OLD stays active and the new key is stored for a
    later retry (not stored with --discard-on-failure): running the same command again,
    with the same new key, tests it again and finishes the rotation."""
    from n8n_deploy.apikeys import rotate as rotation

    emoji = not no_emoji
    example = "n8n-deploy apikey rotate OLD - --name NEW"
    try:
        secret = _read_secret(new_key, what="the new key", example=example)
        database = state(ctx).database()
        options = _options(ctx, timeout=timeout, skip_ssl_verify=skip_ssl_verify)
        plan = rotation.plan_rotation(
            database, old, secret, name, description=description, options=options
        )
    except N8nDeployError as refused:
        if json_output:  # a CI job parsing --json always gets an object saying what happened
            print_json(_refused_rotation(old, name, refused))
        raise
    if new_key not in (None, "-"):  # said once the input is accepted: an error stays one line
        prompts.warn_key_on_command_line(example, emoji=emoji)
    report = rotation.carry_out_rotation(
        database,
        plan,
        discard_on_failure=discard_on_failure,
        delete_old=delete_old,
        options=options,
    )
    _finish_rotation(report, json_output=json_output, emoji=emoji)


def _refused_rotation(old: str, new: str, error: N8nDeployError) -> dict[str, object]:
    """The --json record of a rotation refused before any test: nothing was changed."""
    return {
        "old": old,
        "new": new,
        "rotated": False,
        "old_key": "unchanged",
        "old_key_active": None,
        "new_key": "not stored",
        "resumed": False,
        "exit_status": int(error.exit_status),
        "message": error.message,
        "hint": error.hint,
        "results": [],
    }


# --- reading a key ----------------------------------------------------------------------


def _read_secret(value: str | None, *, what: str, example: str) -> str:
    """A key from the argument, stdin or a hidden prompt; never echoed.  The caller warns
    about a key given as an argument once it has accepted it."""
    raw = prompts.read_key(value, prompt=f"Paste {what} (input hidden)", example=example)
    if not raw.strip():
        raise UsageError(
            f"No key given: {what} is empty", hint=f'Pipe it, e.g. echo "$KEY" | {example}'
        )
    return raw


# --- rendering --------------------------------------------------------------------------

_MARK = {"passed": ("check", "PASS"), "failed": ("cross", "FAIL"), "skipped": (None, "SKIP")}


def _line(check: Check, emoji: bool) -> str:
    symbol, word = _MARK.get(check.status, (None, check.status.upper()))
    if emoji:
        return f"{icon(symbol, True) if symbol else '- '}{check.message}"
    return f"{word:<4} {check.message}"


def _hint(text: str | None) -> list[str]:
    return [f"  Hint: {text}"] if text else []


def _warnings(results: Sequence[ValidationResult], emoji: bool) -> None:
    seen: set[str] = set()
    for result in results:
        for message in result.warnings:
            if message not in seen:
                seen.add(message)
                warn(message, emoji=emoji)


def _report_lines(results: Sequence[TargetResult], emoji: bool) -> list[str]:
    """format once, reachable, authentication (and scopes) per server, expiry once (the
    reference's order), each failure followed by its hint."""
    first = results[0].result
    lines: list[str] = []
    fmt = first.check("format")
    if fmt is not None:
        lines.append(_line(fmt, emoji))
        if fmt.status == "failed":
            lines += _hint(first.hint)
    for item in results:
        result = item.result
        for name in ("reachable", "authentication", "scopes"):
            check = result.check(name)
            if check is None:
                continue
            lines.append(_line(check, emoji))
            if check.status == "failed":
                lines += _hint(result.hint)
    expiry = first.check("expiry")
    if expiry is not None:
        lines.append(_line(expiry, emoji))
        if expiry.status == "failed":
            lines += _hint(first.hint)
    return lines


def _where(target: Target | None, result: ValidationResult) -> str:
    if target is None:
        return "no server"
    url = result.server_url or target.url  # as the probe shows it (a bad URL made safe)
    if not target.server:
        return url
    return f"'{target.server}' " + (f"({url})" if url else NO_URL)


def _verdict(report: KeyReport, emoji: bool) -> str:
    results = report.results
    if report.ok:
        suffix = f" on all {len(results)} servers" if len(results) > 1 else ""
        return f"{icon('ok', emoji)}API key is valid and working{suffix}"
    failed = [r for r in results if not r.result.ok]
    first = failed[0].result
    if first.failed_locally:  # the same for every server
        return f"{icon('fail', emoji)}API key test failed: {first.message}"
    if len(results) == 1:
        return f"{icon('fail', emoji)}API key test failed: {first.message}"
    names = ", ".join(_where(r.target, r.result) for r in failed)
    count = f"{len(failed)} of {len(results)} servers"
    return f"{icon('fail', emoji)}API key test failed on {count}: {names}"


class _Title:
    """Says the report's title and the blank line after it, once."""

    def __init__(self, title: str, emoji: bool) -> None:
        self.line: str | None = f"{icon('test', emoji)}{title}"

    def __call__(self) -> None:
        if self.line is not None:
            say(self.line)
            say("")
            self.line = None


def _finish_one(
    report: KeyReport,
    title: _Title,
    *,
    json_output: bool,
    emoji: bool,
    report_format: _ReportFormat,
) -> None:
    results = [r.result for r in report.results]
    _warnings(results, emoji)
    _unrecorded_uses([report], emoji)
    if json_output:
        if report_format.name == "json":
            records = report.to_dicts()
            print_json(records[0] if len(records) == 1 else records)
        _errors_to_stderr(report.results)
    else:
        title()  # unless the checks said it as they started
        for line in _report_lines(report.results, emoji):
            say(line)
        say("")
        say(_verdict(report, emoji))
        if not report.ok:
            first = next(r.result for r in report.results if not r.result.ok)
            _summary_for_the_log(error_line(first.message, first.hint))
    _exit(report.exit_status)


def _errors_to_stderr(results: Sequence[TargetResult], *, key_name: str | None = None) -> None:
    """With --json, a one-line reason per failed check on stderr for the job log; with
    several keys (--all) each line names the key and the server it was tested against."""
    seen: set[str] = set()
    for item in results:
        result = item.result
        message = result.message
        if key_name is not None:
            where = f" on {_server_cell(item.target)}" if item.target is not None else ""
            message = f"API key '{key_name}'{where}: {message}"
        if result.ok or message in seen:
            continue
        seen.add(message)
        report_error(N8nDeployError(message, hint=result.hint))


class _Progress:
    """``apikey test --all`` at a terminal: a progress bar on stderr, with a line above it
    for each failed check as it happens.  Piped or in a CI log there is none: the table
    (or the report) says it all."""

    def __init__(self, emoji: bool) -> None:
        self.emoji = emoji
        self.failed = 0
        self.bar = ProgressBar(f"{icon('test', emoji)}Testing API keys")

    @classmethod
    def at_a_terminal(cls, emoji: bool) -> _Progress | None:
        return cls(emoji) if _stderr_is_terminal() else None

    def __call__(
        self,
        key_name: str | None,
        target: Target,
        result: ValidationResult,
        finished: int,
        total: int,
    ) -> None:
        if not result.ok:
            self.failed += 1
            mark = icon("cross", self.emoji) or "FAIL "
            self.bar.above(f"{mark}{key_name} -> {_where(target, result)}: {result.outcome.value}")
        self.bar.update(finished, total, self.failed)

    def close(self) -> None:
        self.bar.close()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _unrecorded_uses(reports: Sequence[KeyReport], emoji: bool) -> None:
    """One warning when the database would not take the keys' last-used dates: the checks
    passed all the same."""
    missed = [r for r in reports if r.use_not_recorded is not None]
    if not missed:
        return
    names = ", ".join(f"'{r.key_name}'" for r in missed)
    warn(
        f"the use of {'API key ' if len(missed) == 1 else 'API keys '}{names} could not be "
        f"recorded (last used date not updated): {missed[0].use_not_recorded}; the test "
        "result stands",
        emoji=emoji,
    )


def _load_the_store() -> None:
    """While the checks of ``apikey test --all`` wait for their servers: the database
    layer that then records their outcome (SQLAlchemy), imported (``validate_many``'s
    meanwhile).  The reading before them needed none of it on a SQLite file."""
    import n8n_deploy.store.lifecycle
    import n8n_deploy.store.usage  # noqa: F401


def _finish_all(
    reports: Sequence[KeyReport],
    *,
    json_output: bool,
    emoji: bool,
    report_format: _ReportFormat,
) -> None:
    _warnings([r.result for report in reports for r in report.results], emoji)
    _unrecorded_uses(reports, emoji)
    status = most_serious(report.exit_status for report in reports)
    if json_output:
        if report_format.name == "json":
            print_json([record for report in reports for record in report.to_dicts()])
        for report in reports:
            _errors_to_stderr(report.results, key_name=report.key_name)
        _exit(status)
        return
    rows: list[list[str]] = []
    total = failed = 0
    for report in reports:
        for item in report.results:
            result = item.result
            total += 1
            failed += 0 if result.ok else 1
            rows.append(
                [
                    report.key_name or "",
                    _server_cell(item.target),
                    f"{icon('ok' if result.ok else 'fail', emoji)}{result.outcome.value}",
                    str(result.http_status or ""),
                    _expiry_text(result),
                    result.message,
                    result.hint or "",
                ]
            )
    print_table(
        f"{icon('test', emoji)}API key tests",
        ("Key", "Server", "Result", "HTTP", "Expires", "Message", "Hint"),
        rows,
        plain=not emoji,
        keep_whole=("Key", "Result", "HTTP", "Expires"),
        droppable=("Hint", "Expires", "HTTP"),
        how_to_see="--json shows them",
        folding=("Message", "Hint"),
    )
    if status == ExitStatus.SUCCESS:
        say(f"{icon('ok', emoji)}{'All ' if total > 1 else ''}{counted(total, 'check')} passed")
    else:
        summary = (
            f"{failed} of {total} checks failed; exit status {int(status)} ({check_words(status)})"
        )
        say(f"{icon('fail', emoji)}{summary}")
        _summary_for_the_log(f"Error: {summary}")
    _exit(status)


def _summary_for_the_log(line: str) -> None:
    """A failed report's summary on stderr, for a job log that keeps stdout apart; not
    when both are one terminal, where the report has just said it (reason and hint)."""
    if not one_screen():
        note(line)


def _server_cell(target: Target | None) -> str:
    if target is None:
        return "-"
    return target.server or target.url


def _expiry_text(result: ValidationResult) -> str:
    if result.key_kind is None:  # the key was not read, or is not a key
        return ""
    return human_date(result.expires_at, never="Never")


def _finish_rotation(report: RotationReport, *, json_output: bool, emoji: bool) -> None:
    _warnings([r.result for r in report.results], emoji)
    if json_output:
        print_json(report.to_dict())
        _errors_to_stderr(report.results)
        _exit(report.exit_status)
        return
    new, old = report.new_name, report.old_name
    again = "; finishing an earlier rotation" if report.resumed else ""
    say(f"{icon('test', emoji)}Testing API key: {new} (to replace {old}{again})")
    say("")
    for line in _report_lines(report.results, emoji):
        say(line)
    say("")
    servers = ", ".join(_server_cell(r.target) for r in report.results)
    if report.rotated:
        retired = {
            "deactivated": f"'{old}' is deactivated",
            "deleted": f"'{old}' is deleted",
            "already inactive": f"'{old}' was already inactive",
        }[report.old_action]
        say(f"{icon('ok', emoji)}Rotated: '{new}' is stored, linked to {servers}; {retired}")
        return
    say(
        f"{icon('fail', emoji)}Rotation stopped: '{new}' failed the test; "
        f"'{old}' is unchanged{' and still active' if report.old_active else ''}"
    )
    if report.new_stored:
        say(
            f"'{new}' is stored, linked to {servers}; once it works there, run the same "
            f"command again to finish the rotation (check it: n8n-deploy apikey test '{new}')"
        )
    else:
        say(f"'{new}' was not stored (--discard-on-failure)")
    _exit(report.exit_status)


def _exit(status: ExitStatus) -> None:
    if status != ExitStatus.SUCCESS:
        raise typer.Exit(int(status))


def scopes_command(
    ctx: typer.Context,
    name: Annotated[str, key_name_argument("The stored key whose scopes to list.")],
    server: ServerOption = None,
    server_url: ServerUrlOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    skip_ssl_verify: SkipSslOption = False,
    json_output: JsonOption = False,
    no_emoji: NoEmojiOption = False,
) -> None:
    """List the scopes a stored key holds on each server it is linked to (or on --server /
    --server-url), grouped by resource. From GET /api/v1/discover where the server has it;
    otherwise from requests that change nothing, which show only the scopes they probe."""
    from n8n_deploy.apikeys import check

    emoji = not no_emoji
    options = _options(ctx, timeout=timeout, skip_ssl_verify=skip_ssl_verify, require=None)
    report = check.check_stored_key(
        state(ctx).database(),
        lookup_name(name),
        server_name=server,
        server_url=server_url,
        options=options,
    )
    records: list[dict[str, Any]] = []
    for item in report.results:
        result = item.result
        known = result.scopes
        records.append(
            {
                "key": report.key_name,
                "server": item.target.server if item.target else None,
                "server_url": result.server_url,
                "outcome": result.outcome.value,
                "exit_status": int(result.exit_status),
                "message": result.message,
                "source": known.source if known else None,
                "scopes": scopes.by_resource(known.held) if known else {},
                "missing_scopes": list(known.missing) if known else [],
                "unknown_scopes": list(known.unknown) if known else [],
            }
        )
    if json_output:
        print_json(records)
        _errors_to_stderr(report.results)
        _exit(report.exit_status)
        return
    for item, record in zip(report.results, records, strict=True):
        where = _server_cell(item.target)
        title = f"{icon('key', emoji)}Scopes of API key '{report.key_name}' on {where}"
        if not item.result.ok:
            say(title)
            say(f"  {item.result.message}")
            continue
        how = (
            "from the server's /api/v1/discover"
            if record["source"] == "discover"
            else "from requests that change nothing (only the scopes they probe)"
        )
        rows = [[resource, ", ".join(ops)] for resource, ops in record["scopes"].items()]
        if record["missing_scopes"]:
            rows.append(["(lacks)", ", ".join(record["missing_scopes"])])
        print_table(f"{title}, {how}", ["Resource", "Operations"], rows, plain=not emoji)
    _exit(report.exit_status)
