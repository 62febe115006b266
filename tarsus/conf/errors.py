"""Errors of the TC_Config format, of template resolution and of macro expansion.

They all derive from ``ConfigError`` so a caller that stores or serves configs (the registry,
tarsconfig's ``checkConfig``, the node) can reject a bad one with a single ``except``, and each
carries where the problem is: the file or template name and the 1-based line.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config could not be parsed, addressed or written.

    ``str()`` reads ``source, line N: message`` with the parts that are known.
    """

    def __init__(self, message: str, line: int | None = None, source: str | None = None) -> None:
        # Positional arguments, all kept in ``args``, so the default pickling rebuilds the error.
        super().__init__(message, line, source)
        self.message = message
        self.line = line
        self.source = source

    def __str__(self) -> str:
        line = None if self.line is None else f"line {self.line}"
        known = [part for part in (self.source, line) if part]
        return f"{', '.join(known)}: {self.message}" if known else self.message

    def located(self, line: int | None, source: str | None) -> ConfigError:
        """The same error, placed at ``line`` of ``source`` where it did not know its place."""
        return type(self)(
            self.message,
            self.line if self.line is not None else line,
            self.source if self.source is not None else source,
        )


class TemplateError(ConfigError):
    """A profile template chain could not be resolved."""


class TemplateNotFoundError(TemplateError):
    """A template, or a parent a template names, does not exist."""


class TemplateCycleError(TemplateError):
    """Templates name each other as parents in a loop (a template naming itself is allowed)."""
