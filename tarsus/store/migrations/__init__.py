"""Alembic migrations of the Tarsus database (``script_location`` of :mod:`tarsus.store.migrate`).

``open_store`` runs them to head; nothing here needs an ``alembic.ini``.
"""
