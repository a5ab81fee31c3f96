"""Exceptions across the judge boundary (stdlib only; deployed beside runner.py).

An exception crosses as its class's MRO names, its message and its ``args`` and public
attributes as far as they are data. The receiver rebuilds the first class it knows from a fixed
table of builtin and stdlib exceptions, or a subclass of its nearest base there made on the spot
with the sender's class name, so ``except ValueError`` and ``except statistics.StatisticsError``
both behave as in one interpreter. A BaseException that is not an Exception is never rebuilt as
one: it ends the job (``CandidateExit``).
"""

from __future__ import annotations

from typing import Any

try:
    from . import codec
    from .frames import CandidateExit, SolutionGone
except ImportError:  # deployed flat in the judge image, beside runner.py
    import codec  # type: ignore[no-redef]
    from frames import CandidateExit, SolutionGone  # type: ignore[no-redef]


TABLE_MODULES = ("builtins", "statistics", "json.decoder", "decimal", "re", "struct", "csv",
                 "queue", "zlib")
_TABLE: dict[tuple[str, str], type] = {}


def exceptions() -> dict[tuple[str, str], type]:
    """The fixed table of exception classes, (module, qualname) -> class, made on first use.

    Made late so that the zygote, which imports this file, never imports ``queue`` (and with it
    ``threading``) or ``statistics`` (``random``): their at-fork handlers would run in every
    solution process it forks. The runner makes it at start-up (``exceptions()``); a solution
    process only when an exception reaches it."""
    if not _TABLE:
        import importlib

        for name in TABLE_MODULES:
            for obj in vars(importlib.import_module(name)).values():
                if isinstance(obj, type) and issubclass(obj, Exception):
                    _TABLE[(obj.__module__, obj.__qualname__)] = obj
    return _TABLE


class ExceptionsAsData:
    """What a ``Peer`` does with exceptions: describe its own, rebuild the other side's. At the
    runner end (``runner``) a test's failed assert crosses without its text, and whatever goes
    wrong while rebuilding breaks the job for good (``broken``)."""

    runner: bool
    broken: BaseException | None
    _classes: dict[tuple, type]

    def describe(self, exc: BaseException) -> dict:
        desc = describe(exc)
        if self.runner and isinstance(exc, AssertionError):
            desc["message"] = ""  # a test's failed assert, raised in a callback: no test text
        return desc

    def args(self, exc: BaseException) -> Any:
        if self.runner and isinstance(exc, AssertionError):
            return [[], {}]
        return _args(exc)

    def rebuild(self, desc: Any, data: Any) -> BaseException:
        """The exception the other side raised, as data made into an exception here. Whatever
        goes wrong while rebuilding it breaks the job: the tests never see a half-made one."""
        try:
            return self._rebuild(desc, data)
        except (SolutionGone, CandidateExit):
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a class name type() refuses
            gone = SolutionGone(f"the solution process sent an exception that cannot be "
                                f"rebuilt: {type(exc).__name__}")
            if self.runner:
                self.broken = gone
            raise gone from None

    def _rebuild(self, desc: Any, data: Any) -> BaseException:
        if type(desc) is not dict or type(desc.get("mro")) is not list:
            raise SolutionGone("an exception without its class")
        args, attrs = data if type(data) is list and len(data) == 2 else (None, None)
        mro = [tuple(map(str, c))[:2] for c in desc["mro"][:32] if type(c) is list]
        message = str(desc.get("message", ""))[:2000]
        args = tuple(args) if type(args) in (list, tuple) else (message,)
        cls = self._class(mro)
        if cls is None:  # a BaseException that is not an Exception: never rebuilt as one
            exc: BaseException = CandidateExit(f"{mro[0][1] if mro else '?'}: {message}"[:500])
            if self.runner:
                self.broken = exc
            return exc
        else:
            try:
                exc = cls(*args)
            except Exception:  # noqa: BLE001 - args that the class's __init__ rejects
                exc = cls.__new__(cls, *args)
                exc.args = args
            for name, value in (attrs.items() if type(attrs) is dict else ()):
                if type(name) is str and name.isidentifier() and not name.startswith("_"):
                    try:
                        setattr(exc, name, value)
                    except (AttributeError, TypeError):
                        pass
            if cls not in exceptions().values():
                exc.__rsi_message__ = message  # type: ignore[attr-defined]
        if self.runner:
            exc.__rsi_from_candidate__ = True  # type: ignore[attr-defined]
        return exc

    def _class(self, mro: list[tuple[str, ...]]) -> type | None:
        """The sender's class if the table has it, else a subclass of its nearest base there,
        made here with the sender's name (and its message as ``str``), once per peer."""
        if len(mro) < 1 or len(mro[0]) != 2:
            return None
        table = exceptions()
        if mro[0] in table:
            return table[mro[0]]
        base = next((table[c] for c in mro if c in table), None)
        if base is None:
            return None
        module, qualname = mro[0]
        key = (module, qualname, base)
        if key not in self._classes:
            name = qualname.rpartition(".")[2][:200] or "Exception"
            self._classes[key] = type(name, (base,), {
                "__module__": module[:200], "__qualname__": qualname[:200], "__str__": _str})
        return self._classes[key]


def _str(self: BaseException) -> str:
    return str(getattr(self, "__rsi_message__", ""))


def describe(exc: BaseException) -> dict:
    names = [[str(getattr(c, "__module__", "?")), str(getattr(c, "__qualname__", "?"))]
             for c in type(exc).__mro__[:32]]
    try:
        message = str(exc)[:2000]
    except Exception:  # noqa: BLE001 - a __str__ that raises
        message = ""
    return {"mro": names, "message": message}


def _args(exc: BaseException) -> Any:
    """[args, attributes] of an exception, as far as they are data (e.g. JSONDecodeError.pos)."""
    try:
        codec.encode(exc.args)
        args = list(exc.args)
    except Exception:  # noqa: BLE001 - args that are not data cross as the message
        args = None
    attrs = {}
    for name, value in getattr(exc, "__dict__", {}).items():
        if type(name) is str and not name.startswith("_"):
            try:
                codec.encode(value)
                attrs[name] = value
            except Exception:  # noqa: BLE001 - attributes that are not data stay behind
                pass
    return [args, attrs]
