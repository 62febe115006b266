"""How an interface method's arguments and results travel in ``sBuffer``.

Plain Tars (iVersion 1; TarsCpp ``Operation::createParamDecl``): parameter n has tag n (out
parameters count too). The request carries the in-parameters at their tags; the response
carries the return value at tag 0 and every out-parameter at its tag. Each operation compiles
two hidden structs (arguments, results) so the fast struct codec does the work.

Results come back in one documented shape, the same for proxies and servants:
- no return value and no out-parameters: ``None``;
- only a return value, or only one out-parameter: that value;
- otherwise a tuple ``(return value, out1, out2, ...)`` (the return value left out if void).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tarsus.codec import api, plan
from tarsus.codec.compiler import zero_value
from tarsus.codec.struct import Struct
from tarsus.codec.types import Field, TarsType, idl_name


@dataclass(frozen=True)
class Param:
    tag: int
    name: str
    type: TarsType
    out: bool = False
    routekey: bool = False


@dataclass
class Operation:
    name: str
    return_type: TarsType | None
    params: tuple[Param, ...]
    _args: type[Struct] = field(init=False, repr=False)
    _results: type[Struct] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.inputs = tuple(p for p in self.params if not p.out)
        self.outputs = tuple(p for p in self.params if p.out)
        self._args = _params_struct(
            f"{self.name}.args", [Field(p.tag, f"a{p.tag}", p.type, True) for p in self.inputs]
        )
        results = [Field(p.tag, f"a{p.tag}", p.type, True) for p in self.outputs]
        if self.return_type is not None:
            results.insert(0, Field(0, "a0", self.return_type, True))
        self._results = _params_struct(f"{self.name}.results", results)
        self._result_names = tuple(f.name for f in results)
        self._arg_names = tuple(f"a{p.tag}" for p in self.inputs)
        self._encode_results: Callable[[tuple[Any, ...] | list[Any]], bytes] | None = None
        # The result shape straight from the decoded struct: attrgetter gives the one value
        # for one name and a tuple for several (see _shape).
        self._result_shape: Callable[[Any], Any] = (
            operator.attrgetter(*self._result_names) if self._result_names else _none
        )
        labels = ["return value"] if self.return_type is not None else []
        self.result_labels = tuple(labels + [p.name for p in self.outputs])
        self.routekey = next((p for p in self.params if p.routekey), None)

    # -- client side
    def encode_args(self, args: tuple[Any, ...] | list[Any]) -> bytes:
        if len(args) != len(self.inputs):
            raise TypeError(
                f"{self.name}() takes {len(self.inputs)} arguments "
                f"({', '.join(p.name for p in self.inputs)}), got {len(args)}"
            )
        obj = self._args.__new__(self._args)
        for n, v in zip(self._arg_names, args, strict=True):
            setattr(obj, n, v)
        return api.encode(obj)

    def decode_results(self, data: bytes) -> Any:
        return self._result_shape(api.decode(data, self._results))

    # -- server side
    def decode_args(self, data: bytes) -> list[Any]:
        obj = api.decode(data, self._args)
        return [getattr(obj, n) for n in self._arg_names]

    def encode_results(self, result: Any) -> bytes:
        n = len(self._result_names)
        if n == 1:  # the common shape: one value, not a tuple
            values: tuple[Any, ...] | list[Any] = (result,)
        elif n and result.__class__ is tuple and len(result) == n:
            values = result
        else:
            values = self._unshape(result)
        encode = self._encode_results
        if encode is None:
            encode = self._encode_results = _values_encoder(self._results)
        return encode(values)

    def _shape(self, values: list[Any]) -> Any:
        if not values:
            return None
        if len(values) == 1:
            return values[0]
        return tuple(values)

    def _unshape(self, result: Any) -> list[Any]:
        n = len(self._result_names)
        if n == 0:
            return []
        if n == 1:
            return [result]
        if not isinstance(result, tuple | list) or len(result) != n:
            raise TypeError(
                f"{self.name}() must return a tuple of {n} values ({', '.join(self.result_labels)})"
            )
        return list(result)

    def signature(self) -> str:
        ret = idl_name(self.return_type) if self.return_type is not None else "void"
        ps = ", ".join(
            ("out " if p.out else "") + f"{idl_name(p.type)} {p.name}" for p in self.params
        )
        return f"{ret} {self.name}({ps})"

    def default_result(self) -> Any:
        """Zero values in the result shape (what an empty reply decodes to)."""
        return self._shape([zero_value(f.type) for f in self._results._tars_fields_])


def _values_encoder(cls: type[Struct]) -> Callable[[tuple[Any, ...] | list[Any]], bytes]:
    """Encodes a struct's fields given as values in declared order (no instance in C)."""
    if api.SPEEDUPS:
        return plan.struct_codec(cls).encode_values  # type: ignore[no-any-return]
    names = tuple(f.name for f in cls._tars_fields_)

    def encode(values: tuple[Any, ...] | list[Any]) -> bytes:
        obj = cls.__new__(cls)
        for n, v in zip(names, values, strict=True):
            setattr(obj, n, v)
        return api.encode(obj)

    return encode


def _none(obj: Any) -> None:
    return None


def _params_struct(name: str, fields: list[Field]) -> type[Struct]:
    cls: type[Struct] = type(
        name.replace(".", "_"),
        (Struct,),
        {"__slots__": tuple(f.name for f in fields), "__module__": __name__},
    )
    cls._tars_name_ = name
    cls._tars_fields_ = tuple(fields)
    return cls
