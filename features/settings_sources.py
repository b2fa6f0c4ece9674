"""Where the JOURNEY_* settings are read from, shared by the CLI's and the service's classes.

A variable set to nothing (``JOURNEY_AS_OF= journey serve``, the usual way to clear one for
a command) or to blanks means "not set", in the environment and in .env alike: the setting
takes its next source or its default, instead of failing to parse '' as a date, a number, a
boolean or a list, or reading it as a path ('' is the working folder).
"""

from __future__ import annotations

from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
)


def _without_blanks(source: PydanticBaseSettingsSource) -> PydanticBaseSettingsSource:
    # DotEnvSettingsSource is an EnvSettingsSource; env_vars is what both look names up in.
    if isinstance(source, EnvSettingsSource):
        source.env_vars = {k: v for k, v in source.env_vars.items()
                           if v is None or v.strip()}
    return source


class BlankIsUnset(BaseSettings):
    """The base of the CLI's and the service's settings classes."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """pydantic-settings' sources in its order, the environment's and .env's without
        blank values."""
        return (init_settings, _without_blanks(env_settings), _without_blanks(dotenv_settings),
                file_secret_settings)
