"""Endpoint strings and proxy strings, parsed exactly as TarsCpp parses them.

- An endpoint: ``tcp -h 10.0.0.1 -p 10000 -t 60000`` (``TC_Endpoint::parse``,
  ``util/src/tc_clientsocket.cpp``).
- A proxy string: ``App.Server.Obj@tcp -h 10.0.0.1 -p 10000:tcp -h 10.0.0.2 -p 10000`` (direct
  form: these endpoints, the registry is never asked) or a bare ``App.Server.Obj`` (registry
  form: ask the locator). A ``#suffix`` on the name is split off as C++ does
  (``QueryEpBase::setObjName``, ``ObjectProxy``).
- The registry's ``EndpointF`` struct converts to and from :class:`Endpoint`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from tarsus.protocol.gen.EndpointF import EndpointF

__all__ = [
    "Endpoint",
    "EndpointError",
    "ProxyTarget",
    "Transport",
    "parse_proxy",
    "split_endpoints",
]

#: The transport keyword that starts an endpoint string.
Transport = Literal["tcp", "udp", "ssl"]

#: ``EndpointF.istcp`` / C++ ``TC_Endpoint::EType`` values.
_ISTCP: Final[dict[str, int]] = {"udp": 0, "tcp": 1, "ssl": 2}
_TRANSPORT_OF_ISTCP: Final[dict[int, Transport]] = {0: "udp", 1: "tcp", 2: "ssl"}

_DELIMS: Final = " \t\n\r"  # TC_Endpoint::parse splits on exactly these
_TOKEN = re.compile(r"[^ \t\n\r]+")
_CXX_INT = re.compile(r"[+-]?[0-9]+")  # what ``istringstream >> int`` accepts, to the end
_INT32_MAX: Final = 2**31 - 1
_UINT32_MAX: Final = 2**32 - 1

DEFAULT_TIMEOUT_MS: Final = 3000


class EndpointError(ValueError):
    """An endpoint or proxy string (or an EndpointF) that cannot be used; says what and where."""


def _has_delim(text: str) -> bool:
    return any(c in _DELIMS for c in text)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server address with its Tars options (C++ ``TC_Endpoint`` plus the registry's set).

    Construct directly, with :meth:`parse`, or with :meth:`from_endpointf`. ``str(ep)`` is the
    canonical endpoint string, which :meth:`parse` turns back into an equal ``Endpoint``.

    Two rules of ``TC_Endpoint`` apply on construction: host ``*`` means ``0.0.0.0``, and when
    ``weight_type`` is not 0 an unset weight (-1) becomes 100 and weights cap at 100.
    """

    protocol: Transport
    host: str
    port: int
    #: ``-t``, ms. On a server endpoint, the idle-connection timeout; on a client endpoint it
    #: is *not* the call timeout (C++ and Node ignore it for calls).
    timeout: int = DEFAULT_TIMEOUT_MS
    #: ``-w``: static weight; -1 = unset.
    weight: int = -1
    #: ``-v``: 0 round-robin, 1 static weight (the registry also knows 2, dynamic weight).
    weight_type: int = 0
    #: ``-g``: grid (gray-release) flag.
    grid: int = 0
    #: ``-q``: QoS (DSCP) value for the socket.
    qos: int = 0
    #: ``-e``: 0 no auth, 1 local access-key handshake.
    auth_type: int = 0
    #: ``-s``: the set the registry placed the server in, ``name.area.group``; "" = none.
    set_id: str = ""

    def __post_init__(self) -> None:
        if self.protocol not in _ISTCP:
            raise EndpointError(f"endpoint protocol must be tcp, udp or ssl, not {self.protocol!r}")
        if not isinstance(self.host, str) or not self.host:
            raise EndpointError(f"endpoint host must be a non-empty string, got {self.host!r}")
        if _has_delim(self.host) or self.host.startswith("-"):
            raise EndpointError(f"endpoint host {self.host!r} cannot be written in an endpoint")
        if self.host == "*":
            object.__setattr__(self, "host", "0.0.0.0")
        _check_int("port", self.port, 0, 65535)
        _check_int("timeout", self.timeout, 0, _INT32_MAX)
        _check_int("grid", self.grid, 0, _INT32_MAX)
        _check_int("qos", self.qos, 0, _INT32_MAX)
        _check_int("weight", self.weight, -1, _INT32_MAX)
        _check_int("weight_type", self.weight_type, 0, _UINT32_MAX)
        _check_int("auth_type", self.auth_type, 0, 1)
        if not isinstance(self.set_id, str) or _has_delim(self.set_id) or self.set_id[:1] == "-":
            raise EndpointError(f"endpoint set_id {self.set_id!r} cannot be written in an endpoint")
        if self.weight_type != 0 and (self.weight == -1 or self.weight > 100):
            object.__setattr__(self, "weight", 100)

    # -- derived -----------------------------------------------------------------------------

    @property
    def istcp(self) -> int:
        """The ``EndpointF.istcp`` value: 0 udp, 1 tcp, 2 ssl."""
        return _ISTCP[self.protocol]

    @property
    def is_tcp(self) -> bool:
        """True for stream transports (tcp and ssl), as C++ ``isTcp()``."""
        return self.protocol != "udp"

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, ready for a socket call."""
        return (self.host, self.port)

    @property
    def cmp_desc(self) -> str:
        """``"istcp:host:port"``: C++ ``EndpointInfo`` identity and sort key.

        C++ clients keep endpoint lists ordered by this string (``set<EndpointInfo>``), which
        is what modulo hashing indexes into; endpoints equal here are the same adapter.
        """
        return f"{_ISTCP[self.protocol]}:{self.host}:{self.port}"

    def __str__(self) -> str:
        parts = [f"{self.protocol} -h {self.host} -p {self.port} -t {self.timeout}"]
        if self.grid:
            parts.append(f" -g {self.grid}")
        if self.qos:
            parts.append(f" -q {self.qos}")
        if self.weight != -1:
            parts.append(f" -w {self.weight}")
        if self.weight_type:
            parts.append(f" -v {self.weight_type}")
        if self.auth_type:
            parts.append(f" -e {self.auth_type}")
        if self.set_id:
            parts.append(f" -s {self.set_id}")
        return "".join(parts)

    # -- parsing -----------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Parse one endpoint string as C++ ``TC_Endpoint::parse`` does.

        The first word is ``tcp``, ``udp`` or ``ssl``; then options, each exactly two
        characters (``-h``), each taking the next word as its argument unless that word starts
        with ``-``. ``-h`` is required; ``*`` means ``0.0.0.0``. Numbers are decimal and must
        fill their word. Options C++ does not know are skipped with their argument; ``-s``
        (which C++ reads separately, from registry answers) sets :attr:`set_id`.
        """
        if not isinstance(text, str):
            raise TypeError(f"endpoint string expected, got {type(text).__name__}")
        tokens = _TOKEN.findall(text)
        if not tokens:
            raise EndpointError(f"empty endpoint string {text!r}")
        word: str = tokens[0]
        if word not in _ISTCP:
            raise EndpointError(
                f"bad endpoint {text!r}: must start with tcp, udp or ssl, not {word!r}"
            )
        protocol = _TRANSPORT_OF_ISTCP[_ISTCP[word]]
        host = ""
        port = 0
        timeout = DEFAULT_TIMEOUT_MS
        grid = qos = auth_type = weight_type = 0
        weight = -1
        set_id = ""
        i, n = 1, len(tokens)
        while i < n:
            option = tokens[i]
            i += 1
            if len(option) != 2 or option[0] != "-":
                hint = " (separate endpoints with ':')" if option in _ISTCP else ""
                raise EndpointError(
                    f"bad endpoint {text!r}: expected an option like -h, got {option!r}{hint}"
                )
            argument = ""
            if i < n and tokens[i][0] != "-":
                argument = tokens[i]
                i += 1
            key = option[1]
            if key == "h":
                if not argument:
                    raise EndpointError(f"bad endpoint {text!r}: -h needs a host")
                host = argument
            elif key == "p":
                port = _cxx_int(text, option, argument, 0, 65535)
            elif key == "t":
                timeout = _cxx_int(text, option, argument, 0, _INT32_MAX)
            elif key == "g":
                grid = _cxx_int(text, option, argument, 0, _INT32_MAX)
            elif key == "q":
                qos = _cxx_int(text, option, argument, 0, _INT32_MAX)
            elif key == "w":
                weight = _cxx_int(text, option, argument, 0, _INT32_MAX)
            elif key == "v":
                weight_type = _cxx_int(text, option, argument, 0, _UINT32_MAX)
            elif key == "e":
                auth_type = _cxx_int(text, option, argument, 0, 1)
            elif key == "s":
                set_id = argument
            # any other option is ignored, as in C++
        if not host:
            raise EndpointError(f"bad endpoint {text!r}: no host (-h)")
        return cls(
            protocol,
            host,
            port,
            timeout=timeout,
            weight=weight,
            weight_type=weight_type,
            grid=grid,
            qos=qos,
            auth_type=auth_type,
            set_id=set_id,
        )

    # -- EndpointF ---------------------------------------------------------------------------

    @classmethod
    def from_endpointf(cls, ef: EndpointF) -> Endpoint:
        """Convert a registry ``EndpointF`` (``tars.EndpointF`` from ``EndpointF.tars``).

        Takes the values as C++ ``EndpointInfo(const EndpointF&)`` does, except that a weight
        below -1 reads as -1 (or 0 under static weighting: no traffic either way), and the
        construction rules of :class:`Endpoint` apply. ``groupworkid``, ``grouprealid``,
        ``bakFlag`` and ``nodeName`` are routing data of the registry and are not kept.
        """
        try:
            protocol = _TRANSPORT_OF_ISTCP[ef.istcp]
        except KeyError:
            raise EndpointError(
                f"EndpointF {ef.host}:{ef.port}: istcp must be 0 (udp), 1 (tcp) or 2 (ssl), "
                f"got {ef.istcp!r}"
            ) from None
        weight, weight_type = ef.weight, ef.weightType
        if isinstance(weight, int) and weight < -1:
            weight = 0 if weight_type else -1
        try:
            return cls(
                protocol,
                ef.host,
                ef.port,
                timeout=ef.timeout,
                weight=weight,
                weight_type=weight_type,
                grid=ef.grid,
                qos=ef.qos,
                auth_type=ef.authType,
                set_id=ef.setId,
            )
        except EndpointError as exc:
            raise EndpointError(f"EndpointF {ef.host!r}:{ef.port!r}: {exc}") from None

    def to_endpointf(self, node_name: str = "") -> EndpointF:
        """This endpoint as a registry ``tars.EndpointF``; ``nodeName`` defaults to the host.

        (C++ ``EndpointInfo::toEndpointF`` fills ``nodeName`` the same way.)
        """
        return EndpointF(
            host=self.host,
            port=self.port,
            timeout=self.timeout,
            istcp=self.istcp,
            grid=self.grid,
            setId=self.set_id,
            qos=self.qos,
            weight=self.weight,
            weightType=self.weight_type,
            authType=self.auth_type,
            nodeName=node_name or self.host,
        )


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise EndpointError(f"endpoint {name} must be an int within {lo}..{hi}, got {value!r}")


def _cxx_int(text: str, option: str, argument: str, lo: int, hi: int) -> int:
    """``istringstream >> int`` that must consume the whole word, then a range check."""
    if not argument:
        raise EndpointError(f"bad endpoint {text!r}: {option} needs a number")
    if _CXX_INT.fullmatch(argument) is None:
        raise EndpointError(f"bad endpoint {text!r}: {option} {argument!r} is not a number")
    value = int(argument)
    if not lo <= value <= hi:
        raise EndpointError(
            f"bad endpoint {text!r}: {option} {argument!r} is out of range {lo}..{hi}"
        )
    return value


# A ':' (with blanks or more ':' around it) followed by a transport keyword that is a word of
# its own separates two endpoints. IPv6 hosts (``-h ::1``) have no keyword after their colons.
_SEPARATOR = re.compile(r"[ \t\n\r]*:[ \t\n\r:]*(?=(?:tcp|udp|ssl)(?:[ \t\n\r]|\Z))")


def split_endpoints(text: str) -> list[str]:
    """Split ``"tcp -h a -p 1:tcp -h b -p 2"`` into endpoint strings (C++ ``sepEndpoint``).

    C++ cuts at every occurrence of ``tcp``/``udp``/``ssl``, even inside a host name
    (``-h udp-gw``); here only a keyword after ``:`` starts a new endpoint, so such hosts work.
    """
    stripped = text.strip(_DELIMS + ":")
    if not stripped:
        return []
    return [part.strip(_DELIMS) for part in _SEPARATOR.split(stripped)]


@dataclass(frozen=True, slots=True)
class ProxyTarget:
    """What a proxy string names: the servant object, and its endpoints if given directly.

    ``str(target)`` is C++ ``tars_full_name()``: ``name#hash@ep:ep``.
    """

    obj_name: str
    #: Direct form: these endpoints, in the order given. Empty: ask the registry.
    endpoints: tuple[Endpoint, ...] = ()
    #: The text after ``#`` in the name ("" when none); C++ keys separate connections by it.
    hash_suffix: str = ""

    @property
    def direct(self) -> bool:
        """True for the direct form (``Obj@endpoints``): the registry is never consulted."""
        return bool(self.endpoints)

    def __str__(self) -> str:
        name = f"{self.obj_name}#{self.hash_suffix}" if self.hash_suffix else self.obj_name
        if self.endpoints:
            return f"{name}@{':'.join(str(ep) for ep in self.endpoints)}"
        return name


def parse_proxy(text: str) -> ProxyTarget:
    """Parse ``App.Server.Obj[#hash][@endpoint:endpoint...]``.

    With ``@`` the endpoints follow, separated by ``:`` (each must parse; C++ would log a bad
    one and drop it). Without ``@`` the name is resolved through the registry.
    """
    if not isinstance(text, str):
        raise TypeError(f"proxy string expected, got {type(text).__name__}")
    name_part, at, endpoint_part = text.strip(_DELIMS).partition("@")
    name, _, hash_suffix = name_part.partition("#")
    name = name.strip(_DELIMS)
    hash_suffix = hash_suffix.strip(_DELIMS)
    if not name:
        raise EndpointError(f"bad proxy string {text!r}: no object name before '@' or '#'")
    if _has_delim(name):
        raise EndpointError(f"bad proxy string {text!r}: object name {name!r} contains blanks")
    if not at:
        return ProxyTarget(name, (), hash_suffix)
    pieces = split_endpoints(endpoint_part)
    if not pieces:
        raise EndpointError(f"bad proxy string {text!r}: no endpoints after '@'")
    endpoints = tuple(Endpoint.parse(piece) for piece in pieces)
    return ProxyTarget(name, endpoints, hash_suffix)
