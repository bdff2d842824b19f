"""What every file schema shares: unknown keys are errors, and a validation error becomes one
ConfigError that names the file, the key, the bad value and what is accepted."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from edgetune.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Unknown keys rejected; Distiller's `class` key readable through an alias."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def config_error(exc: ValidationError, source: str) -> ConfigError:
    """Every problem pydantic found, in the user's words: the key as dotted path (without
    pydantic's internal union and validator markers), the message, and the value given; the
    first names the error's key, the others follow it, so one run shows them all."""
    problems = [_problem(e) for e in exc.errors()]
    (key, text), rest = problems[0], problems[1:]
    more = "".join(f"\n  and at '{k}': {t}" if k else f"\n  and: {t}" for k, t in rest)
    return ConfigError(text + more, source=source, key=key or None)


def _problem(error: Any) -> tuple[str, str]:
    key = ".".join(str(p) for p in error["loc"] if not str(p).startswith(("function-", "union")))
    msg = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    return key, msg + ("" if isinstance(got, dict) else f" (got {got!r})")


def validate(model: type[M], raw: Any, source: str, what: str) -> M:
    """`raw` as a `model`, or a ConfigError naming `source`; a file that is not a mapping says so."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} must be a mapping, got {type(raw).__name__}", source=source)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, source) from None


DEVICES = ("cpu", "cuda", "mps", "xpu")


def training_device(device: str) -> str:
    """cpu, cuda or cuda:N, mps, xpu: what PyTorch accepts, said before any work."""
    head, _, index = device.partition(":")
    if head not in DEVICES or (index and (not index.isdigit() or head == "cpu")):
        raise ValueError(f"{device!r} is not a training device; accepted: cpu, cuda, cuda:N, mps, xpu")
    return device


def broker_url(url: str) -> str:
    """A device worker's broker: Redis, plain or over TLS. Anything else is refused at once (a
    worker waited out its whole connect timeout on `notaurl`)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("redis", "rediss") or not rest.split("/")[0].rpartition("@")[2]:
        raise ValueError(f"{url!r} is not a broker URL; accepted: redis://[:password@]host:6379/0, or rediss:// "
                         "for TLS")
    return url
