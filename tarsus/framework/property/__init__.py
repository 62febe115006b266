"""The property service (upstream ``tarsproperty``): ``tars.tarsproperty.PropertyObj``, port
18493.

Metrics servers report about themselves (``PropertyF.reportPropMsg``: queue length, memory,
business counters), merged per window by policy into ``tars_property_YYYYMMDDHH`` tables;
``tars.tarsqueryproperty.QueryObj`` answers the console's questions about them. See
docs/monitoring.md.
"""

from tarsus.framework.property.aggregate import PropertyAggregator
from tarsus.framework.property.service import PROPERTY_SPEC, PropertyService, add_property

__all__ = ["PROPERTY_SPEC", "PropertyAggregator", "PropertyService", "add_property"]
