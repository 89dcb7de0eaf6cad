"""Decoding one map entry into the object every output format shares."""

from __future__ import annotations

from .maps.base import CiliumMap, Decoded
from .version import Version, show


def decode_entry(cmap: CiliumMap, key: bytes | None, value: bytes | None, version: Version | None,
                 btf: tuple | None = None) -> tuple[dict, Decoded | None, Decoded | None]:
    """-> ({"map", "cilium_version", "key", "value"}, decoded key, decoded value); key/value left out when absent.

    btf: the map's (key, value) BTF types (tshoot.btf.BTFStruct or None) when it carries them."""
    obj: dict = {"map": cmap.short, "cilium_version": show(version) if version else None}
    key_btf, value_btf = btf or (None, None)
    dkey = cmap.decode("key", key, version, btf=key_btf) if key is not None else None
    dvalue = cmap.decode("value", value, version, btf=value_btf) if value is not None else None
    if dkey:
        obj["key"] = dkey.fields
    if dvalue:
        obj["value"] = dvalue.fields
    return obj, dkey, dvalue
