"""What the stat and property services share: hourly tables with upstream's layout
(:mod:`.tables`), aggregation windows (:mod:`.windows`), the bounded path from a window to the
database (:mod:`.ingest`), and ``MonitorQuery`` over the tables (:mod:`.query`) served by
``tars.tarsquerystat`` and ``tars.tarsqueryproperty`` (:mod:`.query_service`).
See docs/monitoring.md."""
