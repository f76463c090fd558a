"""What the benchmarks share: their own database, Django, child processes, tables, RESULTS.md.

A benchmark imports this module first (it puts the project on `sys.path`), calls
`use_bench_database("<its name>")` before `django.setup()`, prints its figures with a
`Table`, collects correctness failures in `Problems` (the exit status: `--quick` runs in CI
and must fail on a wrong result, never on a slow one), and without `--quick` appends a
section to `bench/RESULTS.md` with `append_results`.
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

RESULTS_PATH = PROJECT_DIR / "bench" / "RESULTS.md"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/connector"
# Throw-away values: a benchmark's database is dropped and made again on every run.
BENCH_SECRET_KEY = "bench-only-secret-key-" + "x" * 40
BENCH_ENCRYPTION_KEY = "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU="
# The database the benchmark was started with, for the command line in RESULTS.md.
STARTED_WITH_DATABASE_URL = os.environ.get("DATABASE_URL", "")


# --- the benchmark's own database ------------------------------------------------------------


def use_bench_database(suffix: str = "bench", *, postgresql_only: bool = False) -> str:
    """Point DATABASE_URL at a fresh database of this benchmark's own, before django.setup().

    PostgreSQL (DATABASE_URL names one): `<name>_<suffix>`, dropped and created again, so
    benchmarks with different suffixes can run side by side. Otherwise a SQLite file in a new
    temporary folder. A benchmark that only means something on PostgreSQL passes
    `postgresql_only`: it then uses DEFAULT_POSTGRES_URL when DATABASE_URL is not set, and
    stops with exit status 2 when DATABASE_URL names another database.
    """
    url = os.environ.get("DATABASE_URL", "")
    if postgresql_only and not url:
        url = DEFAULT_POSTGRES_URL
    if url.startswith("postgres"):
        base, _, name = url.rpartition("/")
        bench_name = f"{name or 'connector'}_{suffix}"
        import psycopg

        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{bench_name}"')
        os.environ["DATABASE_URL"] = f"{base}/{bench_name}"
    elif postgresql_only:
        print(f"This benchmark needs PostgreSQL; DATABASE_URL is {url!r}.", file=sys.stderr)
        sys.exit(2)
    else:
        folder = tempfile.mkdtemp(prefix="connector-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
        _sqlite_folders.append(Path(folder))
    os.environ.setdefault("SECRET_KEY", BENCH_SECRET_KEY)
    os.environ.setdefault("CONNECTOR_ENCRYPTION_KEY", BENCH_ENCRYPTION_KEY)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Django's test Client (the screen timings) calls itself "testserver".
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
    os.environ["DJANGO_SETTINGS_MODULE"] = "connector.settings"
    return os.environ["DATABASE_URL"]


_sqlite_folders: list[Path] = []


def drop_bench_database() -> None:
    """Drop the bench database when done: the PostgreSQL database, or the SQLite file's
    temporary folder (the machine is shared; nothing reads them afterwards)."""
    from django.db import connections

    connections.close_all()
    for folder in _sqlite_folders:
        shutil.rmtree(folder, ignore_errors=True)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return
    base, _, name = url.rpartition("/")
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(*, migrate: bool = True) -> None:
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def database_label(url: str) -> str:
    """`postgresql (127.0.0.1:5432/connector_bench)`: the vendor and where, no credentials."""
    from django.db import connection

    return f"{connection.vendor} ({url.split('@')[-1]})"


def database_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            return "PostgreSQL " + cursor.fetchone()[0].split()[0]
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sqlite_version()")
            return "SQLite " + cursor.fetchone()[0]
    return connection.vendor


@contextmanager
def without_secondary_indexes(table: str) -> Iterator[None]:
    """PostgreSQL: drop the table's plain indexes, load, build them again and ANALYZE.

    About twice as fast as keeping every index up to date row by row. Constraint indexes
    (primary key, unique constraints) stay: the load must respect them.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname "
            "NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            [table, table],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for _, definition in indexes:
                cursor.execute(definition)
            cursor.execute(f"ANALYZE {table}")


def load_pending_messages(profile_id: int, entity: str, count: int, *, prefix: str) -> None:
    """`count` pending messages of one entity in one INSERT … SELECT: SKUs `<prefix>0000001`…

    Stock messages get their key state too (the warehouse quantity a batch sums).
    On PostgreSQL the rows come from generate_series; on SQLite from a recursive CTE.
    """
    from django.db import connection
    from django.utils import timezone

    from message_queue.models import KeyState, Message

    now = connection.ops.adapt_datetimefield_value(timezone.now())
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        rows = "generate_series(1, %(count)s) AS series(i)"
        sku = "%(prefix)s || lpad(i::text, 7, '0')"
        json_object, prefix_sql = "jsonb_build_object", ""
    else:
        rows = "series"
        sku = "%(prefix)s || printf('%%07d', i)"
        json_object = "json_object"
        prefix_sql = (
            "WITH RECURSIVE series(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM series "
            "WHERE i < %(count)s) "
        )
    if entity == "price":
        key = f"{sku} || '|0'"
        payload = f"{json_object}('sku', {sku}, 'price', 9.99, 'store_id', 0)"
    else:
        key = f"{sku} || '|default'"
        payload = (
            f"{json_object}('sku', {sku}, 'source_code', 'default', "
            f"'warehouses', {json_object}('MAIN', 5))"
        )
    parameters = {"profile": profile_id, "entity": entity, "count": count, "prefix": prefix,
                  "now": now}
    message_sql = (
        f"{prefix_sql}INSERT INTO {Message._meta.db_table} (profile_id, entity, direction, key, "
        "sku, payload, source_ts, status, attempts, next_attempt_at, last_error, "
        "source_notification_id, created_at, updated_at, reprocessed_by, dismissed_reason) "
        f"SELECT %(profile)s, %(entity)s, 'to_magento', {key}, {sku}, {payload}, i, 'pending', "
        f"0, %(now)s, '', 'bench', %(now)s, %(now)s, '', '' FROM {rows}"
    )
    state_sql = (
        f"{prefix_sql}INSERT INTO {KeyState._meta.db_table} (profile_id, entity, key, "
        "source_ts, warehouse_quantities, warehouse_timestamps, updated_at) "
        f"SELECT %(profile)s, %(entity)s, {key}, 1, {json_object}('MAIN', 5), "
        f"{json_object}('MAIN', 1), %(now)s FROM {rows}"
    )
    with connection.cursor() as cursor:
        cursor.execute(message_sql, parameters)
        if entity != "price":
            cursor.execute(state_sql, parameters)
        if postgresql:
            cursor.execute(f"ANALYZE {Message._meta.db_table}")


def configure_profile(
    magento_url: str,
    *,
    batch_count: int | None = None,
    threshold_count: int | None = None,
    senders: int | None = None,
    check_process_time: int | None = None,
    process_sleep_time: int | None = None,
    timeout: int | None = None,
    active: bool = True,
):
    """The default profile pointed at a Magento simulator, with these queue settings."""
    from sandbox.magento import DEFAULT_TOKEN
    from setup_params.models import Profile, get_profile

    profile = get_profile()
    magento = profile.magento_settings
    magento.magento_url, magento.token = magento_url, DEFAULT_TOKEN
    if timeout is not None:
        magento.timeout = timeout
    magento.save()
    queue = profile.queue_settings
    for name, value in (
        ("batch_count", batch_count),
        ("threshold_count", threshold_count),
        ("senders", senders),
        ("check_process_time", check_process_time),
        ("process_sleep_time", process_sleep_time),
    ):
        if value is not None:
            setattr(queue, name, value)
    queue.save()
    if active:
        Profile.objects.filter(pk=profile.pk).update(state=Profile.State.ACTIVE)
    return get_profile()


# --- child processes -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment (the bench database, the test secrets) for a child."""
    environment = dict(os.environ)
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "connector.settings",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(PROJECT_DIR), environment.get("PYTHONPATH", "")])
            ),
        }
    )
    environment.update(overrides)
    return environment


def work_folder(name: str) -> Path:
    """A temporary folder for child processes' logs (and a private Redis)."""
    return Path(tempfile.mkdtemp(prefix=f"connector-bench-{name}-"))


def remove_work_folder(folder: Path, problems: Problems) -> None:
    """Gone after a good run; kept, and named, when something went wrong."""
    if problems:
        print(f"logs kept in {folder}", file=sys.stderr)
    else:
        shutil.rmtree(folder, ignore_errors=True)


class ChildProcess:
    """A subprocess in its own process group with its output in a log file; `stop()` ends
    the group (a Celery worker's pool, gunicorn's workers) and nothing else."""

    def __init__(self, arguments: Sequence[str], environment: dict[str, str], log_path: Path):
        self.log_path = log_path
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            list(arguments), cwd=PROJECT_DIR, env=environment, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> None:
        import signal

        for signal_number, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, signal_number)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        if not self.log.closed:
            self.log.close()


class PrivateRedis:
    """`redis-server --port <free> --save ""`: a broker of the benchmark's own."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server = ChildProcess(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(folder)],
            dict(os.environ),
            folder / "redis.log",
        )
        wait_for(lambda: port_answers(self.port), 10, "redis-server to answer")

    def stop(self) -> None:
        self.server.stop()


def memory_of(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB, from /proc/<pid>/status."""
    figures = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures[name] = int(value.split()[0])
    return figures


# --- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction 0.5 = median, 0.99 = p99)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Column:
    header: str
    width: int
    format: str = "{}"
    align: str = ">"

    def cell(self, value: Any) -> str:
        text = value if isinstance(value, str) else self.format.format(value)
        return f"{text:{self.align}{self.width}}"

    def title(self) -> str:
        return f"{self.header:{self.align}{self.width}}"


@dataclass
class Table:
    """Columns of fixed width; `row()` prints a line at once (long runs show progress) and
    keeps it for RESULTS.md."""

    columns: list[Column]
    lines: list[str] = field(default_factory=list)
    echo: bool = True

    def __post_init__(self) -> None:
        self._emit("".join(column.title() for column in self.columns))

    def row(self, *values: Any) -> None:
        self._emit("".join(column.cell(value) for column, value in
                           zip(self.columns, values, strict=True)))

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        if self.echo:
            print(line, flush=True)


class Problems(list):
    """Correctness failures: they, and only they, make the exit status non-zero."""

    def check(self, condition: bool, text: str) -> bool:
        if not condition:
            self.append(text)
        return condition

    def exit_status(self) -> int:
        for problem in self:
            print("PROBLEM:", problem, file=sys.stderr)
        return 1 if self else 0


@dataclass
class Target:
    """A speed or size target: reported as met or missed, never a failure of the run."""

    name: str
    met: bool
    figure: str

    def line(self) -> str:
        return f"target {self.name}: {'met' if self.met else 'MISSED'} ({self.figure})"


def print_targets(targets: Sequence[Target]) -> list[str]:
    lines = [target.line() for target in targets]
    for line in lines:
        print(line)
    return lines


# --- RESULTS.md ------------------------------------------------------------------------------

RESULTS_HEADER = """# Benchmark results

Each full run (without `--quick`) of a script in `bench/` appends a section here: when, on
what machine, the exact command, the code it measured and its figures. Newest last. Compare
figures from the same machine only; `bench/README.md` says what each benchmark measures and
its targets.
"""


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = "? GiB"
    try:
        with open("/proc/meminfo") as meminfo:
            kilobytes = next(int(line.split()[1]) for line in meminfo
                             if line.startswith("MemTotal:"))
        memory = f"{kilobytes / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory} RAM, {database_version()}, "
        f"Python {platform.python_version()}, load average at the end {load}"
    )


def command_line() -> str:
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(PROJECT_DIR))
    except ValueError:
        shown = str(script)
    words = ["python", shown, *sys.argv[1:]]
    prefix = ""
    if STARTED_WITH_DATABASE_URL:
        parts = urlsplit(STARTED_WITH_DATABASE_URL)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        # Never a password in RESULTS.md.
        prefix = f"DATABASE_URL={parts.scheme}://{netloc}{parts.path} "
    return prefix + " ".join(shlex.quote(word) for word in words)


def code_revision() -> str:
    """The commit measured, and whether the working tree had changes on top of it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_DIR,
                                capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                 cwd=PROJECT_DIR, capture_output=True, text=True,
                                 check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" with uncommitted changes" if changed else "")


def append_results(title: str, tables: Sequence[Table], notes: Sequence[str] = (),
                   path: Path = RESULTS_PATH) -> None:
    """One section at the end of RESULTS.md (made with its header the first time)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {title}, {stamp}",
        "",
        f"- machine: {machine_description()}",
        f"- command: `{command_line()}`",
        f"- code: {code_revision()}",
        "",
    ]
    for table in tables:
        lines += ["```", *table.lines, "```", ""]
    lines += [f"- {note}" for note in notes]
    if notes:
        lines.append("")
    text = path.read_text() if path.exists() else RESULTS_HEADER
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "\n" + "\n".join(lines))
    print(f"figures appended to {path.relative_to(PROJECT_DIR)}")


def add_common_arguments(parser, quick_help: str) -> None:
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--no-record", action="store_true",
                        help="print the figures only; do not append them to bench/RESULTS.md")


def should_record(arguments) -> bool:
    return not arguments.quick and not arguments.no_record
