"""One check for every place the deployment files set SENTIMENT_* variables: each name must be a
real setting (the service ignores unknown ones, so a misspelled name would do nothing silently)
and the values must parse together, as the service would read them at start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from service.settings import Settings

PREFIX = "SENTIMENT_"


class _Given(Settings):
    """Settings from the given values only: not from this process's environment or a ./.env."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def check_settings(env: Mapping[str, object], where: str) -> Settings:
    """Fails naming `where` when a SENTIMENT_* name in `env` is not a setting or a value does not
    parse. Names without the prefix are not the service's and are left alone."""
    values: dict[str, Any] = {k.removeprefix(PREFIX).lower(): v for k, v in env.items() if k.startswith(PREFIX)}
    assert values, f"{where}: no {PREFIX}* variables"
    unknown = sorted(PREFIX + k.upper() for k in values if k not in Settings.model_fields)
    assert not unknown, f"{where}: not settings of the service: {unknown}"
    try:
        return _Given(**values)
    except ValidationError as e:
        raise AssertionError(f"{where}: {e}") from None
