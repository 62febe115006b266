"""The framework services: registry, admin registry, node agent (one subpackage each)."""
