"""The `printforge` command line: serve, migrate, users, config check, simulate, printers import."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from config.loader import ConfigError, Settings, load
from hub.printer_sync import PICKUP_S
from hub.store.users import ROLES


def _settings(args: argparse.Namespace) -> Settings:
    return load(args.config or os.environ.get("PRINTFORGE_CONFIG"))


# The CLI's own variables live under PRINTFORGE_CLI_, a prefix the configuration loader never
# reads, so they can never be taken for (or rejected as) configuration keys.
PASSWORD_ENV = "PRINTFORGE_CLI_PASSWORD"


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    if not sys.stdin.isatty():
        raise ConfigError(f"no password: pass --password or set {PASSWORD_ENV}")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat: "):
        raise ConfigError("the passwords differ")
    return first


async def _with_database(settings: Settings, action: Any) -> int:
    """Run `action(db)` on the migrated database: no drivers, no simulator, no listener."""
    from hub.store import db as store

    database = await store.connect(settings.database_url)
    try:
        await store.migrate(database)
        result: int = await action(database)
        return result
    finally:
        await database.disconnect()


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the hub until interrupted."""
    from hub.serve import run

    settings = _settings(args)
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(run(settings))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending database migrations."""
    from hub.store import db as store

    async def go() -> int:
        database = await store.connect(_settings(args).database_url)
        try:
            applied = await store.migrate(database)
        finally:
            await database.disconnect()
        print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
        return 0

    return asyncio.run(go())


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a configuration file (and the environment) without starting."""
    settings = load(args.file)
    print(f"config ok: database {settings.database_url.split('://', 1)[0]}, ", end="")
    print(f"https port {settings.server.https_port}")
    return 0


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create a user account."""
    from hub import users
    from hub.errors import HubError

    password = _password(args)
    if len(password) < 8:
        raise ConfigError("password: must be at least 8 characters")

    async def action(db: Any) -> int:
        password_hash = await asyncio.to_thread(_hasher().hash, password)
        try:
            await users.create_user(db, args.username, password_hash, args.role)
        except HubError as exc:
            raise ConfigError(exc.detail) from None
        print(f"created user {args.username} ({args.role})")
        return 0

    return asyncio.run(_with_database(_settings(args), action))


def cmd_user_passwd(args: argparse.Namespace) -> int:
    """Set a user's password."""
    from hub import users
    from hub.store import users as users_store

    password = _password(args)
    if len(password) < 8:
        raise ConfigError("password: must be at least 8 characters")

    async def action(db: Any) -> int:
        user = await users_store.by_username(db, args.username)
        if user is None:
            raise ConfigError(f"no user {args.username!r}")
        password_hash = await asyncio.to_thread(_hasher().hash, password)
        await users.update_user(db, user.id, password_hash=password_hash)
        print(f"password changed for {args.username}")
        return 0

    return asyncio.run(_with_database(_settings(args), action))


def _read_printers(file: str) -> list[dict[str, Any]]:
    """The validated entries of a printers file (the simulator's --write output)."""
    from hub.protocols import DEFAULT_PORTS, PRINTER_CREATE

    try:
        entries = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read printers: {exc}") from None
    if not isinstance(entries, list):
        raise ConfigError(f"{file}: expected a JSON list of printers")
    validator = Draft202012Validator(PRINTER_CREATE)
    allowed = set(PRINTER_CREATE["properties"])
    printers = []
    problems = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"{file}[{index}]: expected an object")
            continue
        data = {k: v for k, v in entry.items() if k in allowed}
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
        for error in errors:
            where = ".".join(map(str, error.absolute_path)) or "(entry)"
            problems.append(f"{file}[{index}].{where}: {error.message}")
        data.setdefault("port", DEFAULT_PORTS[data.get("protocol", "bambu")])
        printers.append(data)
    if problems:
        raise ConfigError("; ".join(problems))
    return printers


def cmd_printers_import(args: argparse.Namespace) -> int:
    """Load printers from a JSON list into the database in one transaction; `serve` connects them."""
    from hub.store import printers as printers_store

    printers = _read_printers(args.file)

    async def action(db: Any) -> int:
        added, skipped = await printers_store.create_many(db, printers)
        for name, reason in skipped:
            print(f"skipped {name}: {reason}")
        print(f"imported {len(added)} printer(s), skipped {len(skipped)}")
        if added:
            print(
                f"a running hub connects them within {PICKUP_S:g} s; "
                "otherwise `printforge serve` does at start"
            )
        return 0

    return asyncio.run(_with_database(_settings(args), action))


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run a simulated printer fleet (see docs/simulator.md)."""
    from integrations.simulator.cli import main as simulate_main

    return simulate_main(list(args.rest))


def parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="printforge", description="3DPrintForge print-farm hub")
    p.add_argument("--config", help="TOML configuration file (or PRINTFORGE_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the hub")
    s.add_argument("--config", dest="config", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    m = sub.add_parser("migrate", help="apply database migrations")
    m.add_argument("--config", dest="config", default=argparse.SUPPRESS)
    m.set_defaults(func=cmd_migrate)

    c = sub.add_parser("config", help="configuration tools")
    csub = c.add_subparsers(dest="config_command", required=True)
    check = csub.add_parser("check", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    u = sub.add_parser("user", help="manage user accounts")
    usub = u.add_subparsers(dest="user_command", required=True)
    add = usub.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, default="viewer")
    add.add_argument("--password")
    add.add_argument("--config", dest="config", default=argparse.SUPPRESS)
    add.set_defaults(func=cmd_user_add)
    pw = usub.add_parser("passwd", help="change a user's password")
    pw.add_argument("username")
    pw.add_argument("--password")
    pw.add_argument("--config", dest="config", default=argparse.SUPPRESS)
    pw.set_defaults(func=cmd_user_passwd)

    pr = sub.add_parser("printers", help="printer tools")
    prsub = pr.add_subparsers(dest="printers_command", required=True)
    imp = prsub.add_parser("import", help="import printers from a JSON file")
    imp.add_argument("file")
    imp.add_argument("--config", dest="config", default=argparse.SUPPRESS)
    imp.set_defaults(func=cmd_printers_import)

    # Its options belong to the simulator's own parser: main() hands them over unparsed.
    sim = sub.add_parser("simulate", help="run a simulated fleet (--help for its options)")
    sim.set_defaults(func=cmd_simulate)
    return p


def _command_index(argv: list[str]) -> int | None:
    """Where the subcommand stands in argv (after the global options), or None."""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--config":
            index += 2
        elif arg.startswith("-"):
            index += 1
        else:
            return index
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `printforge` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    at = _command_index(argv)
    if at is not None and argv[at] == "simulate":
        # argparse cannot hand options through a subcommand: the simulator parses its own.
        args = argparse.Namespace(func=cmd_simulate, rest=argv[at + 1 :])
    else:
        args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(f"printforge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
