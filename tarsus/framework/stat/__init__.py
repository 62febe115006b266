"""The stat service (upstream ``tarsstat``): ``tars.tarsstat.StatObj``, port 18293.

Call statistics reported by every client and server (``StatF.reportMicMsg``), summed per
window into ``tars_stat_YYYYMMDDHH`` tables; ``tars.tarsquerystat.QueryObj``
(:mod:`tarsus.framework.monitor.query_service`) answers the console's questions about them.
See docs/monitoring.md.
"""

from tarsus.framework.stat.aggregate import StatAggregator
from tarsus.framework.stat.service import STAT_SPEC, StatService, add_stat

__all__ = ["STAT_SPEC", "StatAggregator", "StatService", "add_stat"]
