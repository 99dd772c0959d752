"""Command groups whose subcommands are made when first used.

Typer makes every command of an application (its options, its help) each time the
program starts, and the modules holding them have to be imported for that.  A
:class:`LazyGroup` names some of its subcommands with a loader instead: the module is
imported and the command made only when that subcommand is run, completed, or listed in
a help page.  ``n8n-deploy apikey list`` so imports the ``apikey`` group's module and
none of the other groups', nor the modules of ``apikey test`` and the other commands
registered beside it.

Help pages, completion and the order of the commands are those of the same application
built eagerly: the loaders register the commands with Typer's own ``command()`` and
``add_typer()``, in the order of ``lazy``.  Reading ``group.commands`` (the docs generator,
the tests) makes every command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, ClassVar

import typer
from typer.core import TyperGroup

#: A loader: a Typer application that registers (at least) the subcommand asked for,
#: made once (``functools.cache``) however many of its commands are used.
Loader = Callable[[], typer.Typer]

_built: dict[int, TyperGroup] = {}


def holder() -> typer.Typer:
    """A Typer application to register lazily-made commands on, with the settings of the
    root application (plain help, no rich markup)."""
    return typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)


def _group(loader: Loader) -> TyperGroup:
    application = loader()
    found = _built.get(id(application))
    if found is None:
        found = _built[id(application)] = typer.main.get_group(application)
    return found


class LazyGroup(TyperGroup):
    """A Typer group some of whose subcommands (``lazy``: name -> loader) are made on
    first use; listed after the ones made eagerly, in the order of ``lazy``."""

    lazy: ClassVar[dict[str, Loader]] = {}

    @property
    def commands(self) -> MutableMapping[str, Any]:
        """Every subcommand, the lazy ones made now (for tools that walk the tree)."""
        for name in self.lazy:
            self._load(name)
        return {name: self._commands[name] for name in self._names()}

    @commands.setter
    def commands(self, value: MutableMapping[str, Any]) -> None:
        self._commands = dict(value)
        self._eager = list(value)

    def _names(self) -> Iterator[str]:
        yield from self._eager
        yield from (name for name in self.lazy if name not in self._eager)

    def _load(self, name: str) -> Any:
        command = self._commands.get(name)
        if command is None and name in self.lazy:
            command = self._commands[name] = _group(self.lazy[name]).commands[name]
        return command

    def add_command(self, cmd: Any, name: str | None = None) -> None:
        name = name or cmd.name
        if name is None:
            raise TypeError("Command has no name.")
        self._commands[name] = cmd
        if name not in self._eager:
            self._eager.append(name)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return self._load(cmd_name)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self._names())
