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


def _settings(args: argparse.Namespace) -> Settings:
    return load(args.config or os.environ.get("PRINTFORGE_CONFIG"))


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    env = os.environ.get("PRINTFORGE_USER_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        raise ConfigError("no password: pass --password or set PRINTFORGE_USER_PASSWORD")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat: "):
        raise ConfigError("the passwords differ")
    return first


async def _with_hub(settings: Settings, action: Any) -> int:
    from hub.runtime import Hub

    hub = Hub(settings)
    await hub.start()
    try:
        result: int = await action(hub)
        return result
    finally:
        await hub.stop()


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


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create a user account."""
    from hub.store import users as users_store

    password = _password(args)
    if len(password) < 8:
        raise ConfigError("password: must be at least 8 characters")

    async def action(hub: Any) -> int:
        if await users_store.by_username(hub.db, args.username) is not None:
            raise ConfigError(f"user {args.username!r} already exists")
        await users_store.create(hub.db, args.username, hub.auth.hash_password(password), args.role)
        print(f"created user {args.username} ({args.role})")
        return 0

    return asyncio.run(_with_hub(_settings(args), action))


def cmd_user_passwd(args: argparse.Namespace) -> int:
    """Set a user's password."""
    from hub.store import users as users_store

    password = _password(args)
    if len(password) < 8:
        raise ConfigError("password: must be at least 8 characters")

    async def action(hub: Any) -> int:
        user = await users_store.by_username(hub.db, args.username)
        if user is None:
            raise ConfigError(f"no user {args.username!r}")
        await users_store.update(hub.db, user.id, password_hash=hub.auth.hash_password(password))
        print(f"password changed for {args.username}")
        return 0

    return asyncio.run(_with_hub(_settings(args), action))


def cmd_printers_import(args: argparse.Namespace) -> int:
    """Load printers from a JSON list (the simulator's --write file) into the hub's database."""
    from hub.errors import HubError
    from hub.protocols import PRINTER_CREATE

    try:
        entries = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{args.file}: cannot read printers: {exc}") from None
    if not isinstance(entries, list):
        raise ConfigError(f"{args.file}: expected a JSON list of printers")
    validator = Draft202012Validator(PRINTER_CREATE)
    allowed = set(PRINTER_CREATE["properties"])
    printers = []
    for index, entry in enumerate(entries):
        data = {k: v for k, v in entry.items() if k in allowed}
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
        if errors:
            where = ".".join(map(str, errors[0].absolute_path)) or "(entry)"
            raise ConfigError(f"{args.file}[{index}].{where}: {errors[0].message}")
        printers.append(data)

    async def action(hub: Any) -> int:
        added = skipped = 0
        for data in printers:
            try:
                await hub.add_printer(data)
                added += 1
            except HubError as exc:
                print(f"skipped {data['name']}: {exc.detail}")
                skipped += 1
        print(f"imported {added} printer(s), skipped {skipped}")
        return 0

    return asyncio.run(_with_hub(_settings(args), action))


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
    add.add_argument("--role", choices=["viewer", "operator", "admin"], default="viewer")
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

    sim = sub.add_parser("simulate", help="run a simulated fleet", add_help=False)
    sim.add_argument("rest", nargs=argparse.REMAINDER)
    sim.set_defaults(func=cmd_simulate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `printforge` console script."""
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
