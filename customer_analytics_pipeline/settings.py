"""The project's settings: one pydantic-settings model, read from the environment in one
place.

``load_settings()`` is the only code that reads configuration from the environment
(``definitions.py`` calls it once for the code location; the command line calls it for
its own run). Every value is validated by the model, and a malformed one fails with a
one-line ValueError naming the variable (and never quoting DATABASE_URL). ``Settings(...)``
built directly holds exactly its arguments and the defaults, whatever the environment:
what tests and benchmarks use. The database password never lands here: the code
location binds ``DATABASE_URL`` through Dagster's ``EnvVar``, and only whether it is set
is recorded.
"""

from datetime import timedelta
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from customer_analytics_pipeline.warehouse.connection import SessionLimits, validated_url

DATABASE_URL_VARIABLE = "DATABASE_URL"
ENVIRONMENT_PREFIX = "CUSTOMER_ANALYTICS_"
# PostgreSQL keeps its timeouts in milliseconds in a 32-bit integer.
MAX_TIMEOUT_SECONDS = 2_147_483
DEFAULT_LIMITS = SessionLimits()


def _cron_expression(value: str) -> str:
    """A cron expression Dagster's schedules accept, asked of a throwaway schedule.

    Dagster is imported only here, when a cron is set: the operators' commands load
    settings without loading Dagster."""
    from dagster import DagsterInvalidDefinitionError, ScheduleDefinition

    try:
        ScheduleDefinition(name="cron_setting", cron_schedule=value, job_name="cron_setting")
    except DagsterInvalidDefinitionError:
        raise ValueError(
            "must be a cron expression of five fields (minute hour day-of-month month day-of-week), "
            "such as '0 3 * * *'"
        ) from None
    return value


def _time_zone_name(value: str) -> str:
    """An IANA time zone name this Python knows (what Dagster resolves schedules in)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone name such as 'Europe/Berlin' or 'UTC'") from None
    return value


def _database_url_is_set(value: Any) -> Any:
    """DATABASE_URL itself is validated (libpq's syntax) but only whether it is set is kept."""
    return bool(value and validated_url(value)) if isinstance(value, str) else value


CronExpression = Annotated[str, AfterValidator(_cron_expression)]
TimeZoneName = Annotated[str, AfterValidator(_time_zone_name)]
TimeoutSeconds = Annotated[int, Field(ge=0, le=MAX_TIMEOUT_SECONDS)]


class Settings(BaseSettings):
    """What an operator can set (docs/operations.md, Configuration): each field is read
    from ``CUSTOMER_ANALYTICS_<FIELD>`` unless it names its own variable."""

    # validate_default off: the defaults below are valid, and checking the default cron
    # would load Dagster for every operator command.
    model_config = SettingsConfigDict(
        env_prefix=ENVIRONMENT_PREFIX, env_ignore_empty=True, frozen=True, populate_by_name=True, extra="forbid",
        validate_default=False,
    )

    # docs/contract.md, Interfaces: the hourly tick's cadence is part of the contract.
    hourly_cron: ClassVar[str] = "0 * * * *"

    # Scheduled runs are balanced by size: about this many customers per run (an
    # organization larger than that runs alone).
    customers_per_run: int = Field(50_000, ge=1)
    nightly_cron: CronExpression = "0 3 * * *"
    nightly_timezone: TimeZoneName = "UTC"
    freshness_hours: int = Field(2, ge=1)
    # Whether DATABASE_URL is set (its value is bound through EnvVar); else the embedded server.
    database_url_set: Annotated[bool, BeforeValidator(_database_url_is_set)] = Field(
        False, validation_alias=DATABASE_URL_VARIABLE
    )
    embedded_data_dir: str = Field(".pgdata", validation_alias=ENVIRONMENT_PREFIX + "PGDATA")
    # customer_segment_changes rows older than this are deleted by full runs.
    segment_history_days: int = Field(730, ge=1)
    statement_timeout_seconds: TimeoutSeconds = DEFAULT_LIMITS.statement_timeout_seconds
    lock_timeout_seconds: TimeoutSeconds = DEFAULT_LIMITS.lock_timeout_seconds
    idle_in_transaction_timeout_seconds: TimeoutSeconds = DEFAULT_LIMITS.idle_in_transaction_timeout_seconds

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        **_: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Built directly, only its arguments count: ``load_settings`` reads the environment."""
        return (init_settings,)

    @property
    def freshness_window(self) -> timedelta:
        return timedelta(hours=self.freshness_hours)

    @property
    def session_limits(self) -> SessionLimits:
        return SessionLimits(
            statement_timeout_seconds=self.statement_timeout_seconds,
            lock_timeout_seconds=self.lock_timeout_seconds,
            idle_in_transaction_timeout_seconds=self.idle_in_transaction_timeout_seconds,
        )


def variable_name(field_or_alias: str) -> str:
    """The environment variable behind a field (its alias when it names its own)."""
    return field_or_alias if field_or_alias.isupper() else ENVIRONMENT_PREFIX + field_or_alias.upper()


def _problem(error: ErrorDetails) -> str:
    """One validation error as the operator reads it: the variable, what it must be, and
    what it was (never for DATABASE_URL, whose value holds a password)."""
    variable = variable_name(str(error["loc"][0]))
    context = error.get("ctx") or {}
    requirement = {
        "int_parsing": "must be a whole number",
        "greater_than_equal": f"must be at least {context.get('ge')}",
        "less_than_equal": f"must be at most {context.get('le')}",
    }.get(error["type"]) or str(context.get("error") or error["msg"])
    if variable == DATABASE_URL_VARIABLE:
        return requirement  # validated_url's own message, which names the variable
    return f"{variable} {requirement}, got {error['input']!r}"


def load_settings() -> Settings:
    """The settings from the process environment, defaults for what is unset or empty;
    a ValueError naming the first malformed variable."""
    try:
        return Settings(**EnvSettingsSource(Settings)())
    except ValidationError as error:
        raise ValueError(_problem(error.errors()[0])) from None
