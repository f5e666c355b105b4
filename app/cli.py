"""The ``pyaichat`` command (``python -m app``): the command line, the configuration check and the
commands that need no server. Only what a command needs is imported, and the web stack last: usage
errors, ``--help`` and configuration errors answer at once instead of after the 3 s it takes to load
the server.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.config import ConfigError, load_settings, read_environment
from app.log_format import configure_logging


def keep_files_private() -> None:
    """Files this process creates (database, browser sessions, …) are its user's alone: NiceGUI writes
    the session files with the default mode, which the umask made 0644 (world-readable)."""
    os.umask(os.umask(0o077) | 0o077)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 1 and 65535")
    return port


def _add_server_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    where = "address to listen on, instead of APP_HOST (0.0.0.0 or :: for every interface)"
    parser.add_argument("--host", default=default, help=where)
    parser.add_argument("--port", type=_port, default=default, help="port to listen on, instead of APP_PORT")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line: an optional command (none means ``serve``) and its options. Bad arguments
    print the usage and a one-line reason, and exit with 2."""
    name = Path(sys.argv[0]).name
    parser = argparse.ArgumentParser(
        prog="python -m app" if name in ("__main__.py", "-m", "-c", "") else name,
        usage="%(prog)s [-h] [--host HOST] [--port PORT] [COMMAND]",
        description="pyaichat: the chat UI, the admin console and the OpenAI-compatible API in one "
        "process. Configured by environment variables (see .env.example); the options below win over them.",
    )
    _add_server_options(parser)
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="run the server (the default)")
    # the options also after the command; there, one not given leaves the value from before the command
    _add_server_options(serve_parser, default=argparse.SUPPRESS)
    database = commands.add_parser(
        "db",
        help="the database schema: upgrade it, show its revision, list the revisions",
        description="Schema migrations (start-up also upgrades). Reads DATABASE_URL / DATABASE_PATH.",
    )
    database.add_argument(
        "action",
        choices=["upgrade", "current", "history"],
        help="upgrade: to the newest revision; current: the database's revision; history: every revision",
    )
    commands.add_parser(
        "rotate-encryption-key",
        help="re-encrypt the stored channel secrets from OLD_ENCRYPTION_KEY to ENCRYPTION_KEY",
        description="Run with the service stopped: OLD_ENCRYPTION_KEY (the key the secrets are stored "
        "under) and ENCRYPTION_KEY (the new one) in the environment, never on the command line. All or "
        "nothing; running it again is harmless. Then start pyaichat with the new ENCRYPTION_KEY.",
    )
    args = parser.parse_args(argv)
    args.command = args.command or "serve"
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m app`` and the ``pyaichat`` command."""
    args = parse_args(argv)
    if args.command == "db":
        sys.exit(manage_database(args.action))
    if args.command == "rotate-encryption-key":
        sys.exit(rotate_encryption_key_command())
    if args.command == "serve":
        serve(args)


def _configure_logging() -> None:
    configure_logging("text")


def manage_database(action: str) -> int:
    """``python -m app db ACTION``; a problem is one line on stderr and exit code 2."""
    _configure_logging()
    try:
        url = read_environment().sqlalchemy_url
    except ConfigError as exc:
        print(f"pyaichat: configuration error: {exc}", file=sys.stderr)
        return 2
    from app.migrate import DATABASE_PROBLEMS, explain_database_problem, run_command

    try:
        return run_command(action, url)
    except DATABASE_PROBLEMS as exc:
        print(f"pyaichat: {explain_database_problem(exc, url)}", file=sys.stderr)
    return 2


def rotate_encryption_key_command() -> int:
    """``python -m app rotate-encryption-key``: the outcome on stdout, a problem as one line on stderr
    and exit code 2 (nothing changed then)."""
    _configure_logging()
    old_key = os.environ.get("OLD_ENCRYPTION_KEY", "")
    if not old_key:
        print("pyaichat: set OLD_ENCRYPTION_KEY to the key the secrets are stored under", file=sys.stderr)
        return 2
    from app.db import make_engine
    from app.migrate import DATABASE_PROBLEMS, explain_database_problem, upgrade
    from services.key_rotation import RotationError, rotate_encryption_key

    try:
        settings, _info = load_settings()
        new_key = settings.secret("encryption_key")
        upgrade(settings.sqlalchemy_url)  # the columns this version encrypts exist
        engine = make_engine(settings.sqlalchemy_url, pooled=False)
        try:
            result = rotate_encryption_key(engine, old_key=old_key, new_key=new_key)
        finally:
            engine.dispose()
    except ConfigError as exc:
        print(f"pyaichat: configuration error: {exc}", file=sys.stderr)
        return 2
    except (RotationError, ValueError) as exc:
        print(f"pyaichat: {exc}", file=sys.stderr)
        return 2
    except DATABASE_PROBLEMS as exc:
        print(f"pyaichat: {explain_database_problem(exc, settings.sqlalchemy_url)}", file=sys.stderr)
        return 2
    print(
        f"pyaichat: {result.rotated} stored secrets re-encrypted ({result.already_new} already were) "
        "under the new ENCRYPTION_KEY; start pyaichat with it now"
    )
    return 0


def serve(args: argparse.Namespace) -> None:
    keep_files_private()
    _configure_logging()
    # a crash in native code (a driver, the interpreter) prints every thread's stack to stderr, so that
    # an instance that dies on a signal says where, instead of ending its log mid-sentence
    faulthandler.enable()
    options = {"app_host": args.host, "app_port": args.port}
    overrides = {name: value for name, value in options.items() if value is not None}
    try:
        settings, info = load_settings(**overrides)
    except ConfigError as exc:
        print(f"pyaichat: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    from app.main import serve as run  # the web stack, once the configuration holds

    run(settings, info)
