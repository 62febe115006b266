"""Generate Python from Shop.tars, encode an Order, decode it back, and show the bytes.

Run: python examples/codec/roundtrip.py  (after scripts/setup; scripts/demo does both)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="tarsus-demo-")) / "shop_gen"
    subprocess.run(
        [sys.executable, "-m", "tarsus", "idl", "gen", str(HERE / "Shop.tars"), "-o", str(out)],
        check=True,
    )
    sys.path.insert(0, str(out.parent))
    from shop_gen import Shop  # type: ignore[import-not-found]

    from tarsus.codec import decode, encode

    order = Shop.Order(
        id=42,
        customer="Zoë",
        lines=[Shop.Money(cents=1999), Shop.Money(cents=500, currency=Shop.Currency.USD)],
        notes={"gift": "yes"},
        signature=b"\x00\x01\x02",
    )
    data = encode(order)
    back = decode(data, Shop.Order)
    print(f"order:   {order}")
    print(f"encoded: {len(data)} bytes: {data.hex(' ')}")
    print(f"decoded: {back}")
    print("round trip ok" if back == order else "ROUND TRIP FAILED")
    sys.exit(0 if back == order else 1)


if __name__ == "__main__":
    main()
