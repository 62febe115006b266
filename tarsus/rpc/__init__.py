"""The Tars RPC runtime: servants, proxies, communicator (asyncio)."""

from tarsus.rpc.proxy import ServantProxy
from tarsus.rpc.servant import Servant

__all__ = ["Servant", "ServantProxy"]
