"""The config format: model, loading with ``FILE:LINE`` errors, cross-reference checks, and the compiled plan."""

from typing import TYPE_CHECKING

from flowbus.config.issues import ConfigError, Issue, Severity
from flowbus.lazy import lazy_attributes

if TYPE_CHECKING:
    from flowbus.config.loader import LoadedConfig, load_config, load_config_text
    from flowbus.config.model import Config

# The pydantic models are built when the loader or the model is first used, not when a store
# imports ``flowbus.config.versions``.
__getattr__ = lazy_attributes(__name__, {
    **dict.fromkeys(("LoadedConfig", "load_config", "load_config_text"), "flowbus.config.loader"),
    "Config": "flowbus.config.model",
})  # fmt: skip

__all__ = [
    "Config",
    "ConfigError",
    "Issue",
    "LoadedConfig",
    "Severity",
    "load_config",
    "load_config_text",
]
