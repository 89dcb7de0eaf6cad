"""Decoding one map entry into the object every output format shares."""

from __future__ import annotations

from tshoot.core.btf import BTFStruct
from tshoot.maps.base import CiliumMap, Decoded
from tshoot.core.version import Range, Version, show


def decode_entry(cmap: CiliumMap, key: bytes | None, value: bytes | None, version: Version | None,
                 key_btf: BTFStruct | None = None, value_btf: BTFStruct | None = None, within: Range | None = None,
                 ) -> tuple[dict, Decoded | None, Decoded | None]:
    """-> ({"map", "cilium_version", "key", "value"}, decoded key, decoded value); key/value left out when absent.

    `key_btf`/`value_btf`: the map's BTF types when it has them (tshoot.core.btf.describe); they choose the
    layout before the version does (Decoded.reason says which rule chose). Without either, `within` limits
    the layouts to those versions'."""
    obj: dict = {"map": cmap.short, "cilium_version": show(version) if version else None}
    dkey = cmap.decode("key", key, version, key_btf, within) if key is not None else None
    role = cmap.value_role(dkey.fields) if dkey else None  # a Service frontend is not a backend slot
    dvalue = cmap.decode("value", value, version, value_btf, within, role) if value is not None else None
    if dkey:
        obj["key"] = dkey.fields
    if dvalue:
        obj["value"] = dvalue.fields
        if dkey is None and "role" in dvalue.fields:
            dvalue.reason += f"; read as a {dvalue.fields['role']} from its own bytes (give the key to be sure)"
    return obj, dkey, dvalue
