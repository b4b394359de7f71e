"""The config format: model, loading with ``FILE:LINE`` errors, cross-reference validation."""

from flowbus.config.issues import ConfigError, Issue, Severity
from flowbus.config.loader import LoadedConfig, load_config, load_config_text
from flowbus.config.model import Config

__all__ = [
    "Config",
    "ConfigError",
    "Issue",
    "LoadedConfig",
    "Severity",
    "load_config",
    "load_config_text",
]
