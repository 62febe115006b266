"""The JSON protocol (iVersion 5) mapping, as tars2cpp-generated servants read and write it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tarsus.idl
from tarsus.codec import DecodeError, EncodeError
from tarsus.codec import jsonproto as J
from tarsus.codec import types as T

IDL = """
module J {
    enum Level { LOW, HIGH = 3 };
    struct Item { 0 require string name; 1 optional vector<byte> raw; 2 optional Level level; };
    interface Svc {
        int put(Item item, map<int, string> tags, out long id);
        void ping();
    };
};
"""


@pytest.fixture(scope="module")
def j(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path: Path = tmp_path_factory.mktemp("j") / "J.tars"
    path.write_text(IDL)
    return tarsus.idl.load(path).J


def test_values_map_as_upstream(j: Any) -> None:
    item = j.Item(name="n", raw=b"\x01\xff", level=j.Level.HIGH)
    assert J.to_json(item, j.Item) == {"name": "n", "raw": [1, -1], "level": 3}
    assert J.from_json({"name": "n", "raw": [1, 255], "level": 3}, j.Item) == item
    assert J.to_json({1: "a"}, T.map(T.INT, T.STRING)) == {"1": "a"}
    assert J.to_json(True, T.BOOL) is True


def test_request_and_response_bodies(j: Any) -> None:
    op = j.SvcServant._tars_ops_["put"]
    body = J.encode_args(op, (j.Item(name="x"), {7: "seven"}))
    assert json.loads(body) == {
        "item": {"name": "x", "raw": [], "level": 0},
        "tags": {"7": "seven"},
    }
    assert J.decode_args(op, body) == [j.Item(name="x"), {7: "seven"}]
    rsp = J.encode_results(op, (0, 2**40))
    assert json.loads(rsp) == {"tars_ret": 0, "id": 2**40}
    assert J.decode_results(op, rsp) == (0, 2**40)
    assert J.decode_results(j.SvcServant._tars_ops_["ping"], b"{}") is None


def test_bad_json_is_a_clear_decode_error(j: Any) -> None:
    op = j.SvcServant._tars_ops_["put"]
    with pytest.raises(DecodeError, match="not JSON"):
        J.decode_args(op, b"{nope")
    with pytest.raises(DecodeError, match="lacks parameter 'tags'"):
        J.decode_args(op, b'{"item": {"name": "x"}}')
    with pytest.raises(DecodeError, match=r"item: required field 'name' is missing"):
        J.decode_args(op, b'{"item": {}, "tags": {}}')
    with pytest.raises(DecodeError, match="out of range"):
        J.from_json(300, T.BYTE)
    with pytest.raises(DecodeError, match="expected string, got a number"):
        J.from_json(5, T.STRING)
    with pytest.raises(EncodeError, match="JSON maps need"):
        J.to_json({j.Item(name="k"): 1}, T.map(j.Item, T.INT))
