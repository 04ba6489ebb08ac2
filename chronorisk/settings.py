"""One settings object for every environment-dependent choice (paths, URIs, secrets).

Built once by the CLI or the service at start-up and passed down; nothing reads the
environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev-pepper"}


NO_VERSION = "none"  # serve_versions: the launcher found no champion version for the product


class Settings(BaseSettings):
    """Environment settings; every field may be set as CHRONORISK_<FIELD> (or its own alias)."""

    model_config = SettingsConfigDict(env_prefix="CHRONORISK_", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        "production", description="production unless chosen otherwise: placeholder secrets are accepted only in "
                                  "development, which must be chosen explicitly")
    data_dir: Path = Field(Path("data/synth"), description="raw data folder")
    features_dir: Path = Field(Path("data/features"), description="feature snapshots")
    profile: Path = Field(
        Path("experiments/profiles/default.yaml"), description="synthetic population profile"
    )
    mlflow_tracking_uri: str = Field(
        "sqlite:///mlflow.db",
        validation_alias="MLFLOW_TRACKING_URI",
        description="MLflow tracking URI (SQLite by default)",
    )
    mlflow_artifacts: Path = Field(Path("mlartifacts"), description="local MLflow artifact root")
    promotion_log: Path = Field(Path("promotions.jsonl"), description="every gate verdict and rollback, appended")
    audit_url: str = Field("sqlite:///audit.db", description="audit log database URL")
    secrets_dir: Path = Field(Path("secrets"), description="audit HMAC and signing keys (0700 folder, 0600 files), "
                                                           "outside the audit database")
    audit_key: SecretStr | None = Field(None, description="the audit chain's HMAC key; overrides the one in "
                                                          "secrets_dir")
    audit_checkpoints: Path | None = Field(None, description="append-only file of signed chain heads (default: "
                                                             "beside a SQLite audit database)")
    audit_checkpoint_every: int = Field(100, ge=1, description="records between signed checkpoints")
    audit_timeout_s: float = Field(2.0, gt=0, le=20, description="client-side limit on one audit write (connect, "
                                                                "lock, statement, commit); beyond it a 503")
    keys_file: Path = Field(Path("keys.json"), description="API keys: hashes and allowed products, mode 0600")
    serve_products: Annotated[list[str], NoDecode] = Field(
        ["diabetes"], description="products whose champion the service loads (comma-separated in the environment)")
    serve_versions: Annotated[dict[str, str], NoDecode] = Field(
        {}, description="product=version pairs (comma-separated in the environment) the service loads instead of "
                        "resolving the champion alias: `chronorisk serve` resolves it once and hands the version to "
                        "every worker, so all workers (and any BentoML restarts) answer with the same model; "
                        f"{NO_VERSION!r}: there was no champion at launch, so the product stays not ready")
    bentoml_telemetry: bool = Field(False, description="BentoML's usage statistics, sent to its makers: off unless "
                                                       "turned on (`chronorisk serve` and the demo start BentoML "
                                                       "with BENTOML_DO_NOT_TRACK otherwise)")
    max_concurrency: int = Field(32, ge=1, description="requests in flight per worker; beyond it a fast 503")
    max_reading: int = Field(256, ge=1, description="connections still sending their body, per worker, counted "
                                                   "apart from requests being scored; beyond it a fast 503")
    body_timeout_s: float = Field(10.0, gt=0, description="seconds a client has to send its whole body (408 beyond)")
    refusal_audit_interval_s: float = Field(10.0, gt=0, description="refusals before authentication are audited "
                                                                    "as one record per this interval")
    max_body_bytes: int = Field(2 * 2**20, ge=1024, description="largest request body accepted (413 beyond)")
    max_batch: int = Field(100, ge=1, description="applicants per /score_batch request (413 beyond)")
    id_pepper: SecretStr = Field(
        SecretStr("dev-pepper"), description="HMAC secret for member ids in logs and audit"
    )

    @field_validator("serve_products", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("serve_versions", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [[part.strip() for part in p.split("=")] for p in value.split(",") if p.strip()]
            bad = [p for p in pairs if len(p) != 2 or not p[0] or not (p[1].isdigit() or p[1] == NO_VERSION)]
            if bad:
                raise ValueError(f"serve_versions: {len(bad)} entries are not product=version (e.g. diabetes=3, "
                                 f"or {NO_VERSION} for a product with no champion at launch)")
            return {product: version for product, version in pairs}
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secret_outside_development(self) -> Settings:
        # `test` is refused too: a test deployment pseudonymises real-looking ids, and a public pepper
        # lets anyone reverse them by hashing candidate ids.
        placeholder = self.id_pepper.get_secret_value() in PLACEHOLDER_SECRETS
        if self.environment != "development" and placeholder:
            raise ValueError(
                f"CHRONORISK_ID_PEPPER is unset or a placeholder, which only CHRONORISK_ENVIRONMENT=development "
                f"accepts (this is {self.environment}); set a real secret"
            )
        if self.environment != "development" and self.audit_key is not None and \
                self.audit_key.get_secret_value() in PLACEHOLDER_SECRETS:
            raise ValueError("CHRONORISK_AUDIT_KEY is a placeholder; set a real secret or leave it unset")
        return self


class SettingsError(ValueError):
    """Settings that cannot be used; the message names fields and rules, never a value (they hold secrets)."""


def load_settings() -> Settings:
    """The settings from the environment, or SettingsError: pydantic's own error text would print
    `input_value`, which here is every setting, the secrets included."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
                             for e in err.errors(include_input=False, include_url=False))
        raise SettingsError(f"invalid settings: {problems}") from None
