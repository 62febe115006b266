"""The Tars RPC runtime: servants, proxies, communicator, application (asyncio)."""

from tarsus.rpc.current import Current, current
from tarsus.rpc.proxy import CallOptions, ServantProxy
from tarsus.rpc.servant import Servant

__all__ = ["CallOptions", "Current", "Servant", "ServantProxy", "current"]
