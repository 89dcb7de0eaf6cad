"""Which layout decodes a map's bytes, and why: the map's BTF first, then the version, then the size.

(tests/test_c_oracle.py checks the BTF rule on real BTF of every layout; here the order of the rules.)"""

import pytest

from tshoot.core.btf import BTFStruct
from tshoot.mapio.decode import decode_entry
from tshoot.core.errors import UsageError
from tshoot.maps import lbbackends

# struct lb4_backend of Cilium 1.15 as BTF describes it: (bit offset, bit size) per member (reference Appendix A)
BTF_1_15 = BTFStruct("lb4_backend", 12, {"address": (0, 32), "port": (32, 16), "proto": (48, 8), "flags": (56, 8),
                                          "cluster_id": (64, 16), "pad": (80, 16)})
VALUE = bytes.fromhex("0a00001b 0050 06 00 0700 0200")  # cluster 7; byte 10 is 1.16's zone


def test_btf_beats_the_version():
    decoded = lbbackends.LB4.decode("value", VALUE, (1, 19, 4), btf=BTF_1_15)
    assert decoded.fields["cluster_id"] == 7 and "zone" not in decoded.fields
    assert "BTF" in decoded.reason and "1.15.0–1.15.x" in decoded.reason


def test_the_version_decides_without_btf():
    decoded = lbbackends.LB4.decode("value", VALUE, (1, 19, 4))
    assert decoded.fields["zone"] == 2 and decoded.reason == "Cilium 1.19.4 uses struct lb4_backend"


def test_btf_that_matches_no_layout_falls_back_and_says_so():
    shifted = BTFStruct("lb4_backend", 12, {**BTF_1_15.members, "cluster_id": (72, 16)})
    decoded = lbbackends.LB4.decode("value", VALUE, (1, 16, 0), btf=shifted)
    assert decoded.reason == ("the map's BTF value type lb4_backend (12 bytes) matches no layout tshoot knows, "
                              "so Cilium 1.16.0 uses struct lb4_backend")
    by_size = lbbackends.LB4.decode("value", bytes(8), btf=BTFStruct("lb4_backend", 8, {}))
    assert by_size.reason.startswith("the map's BTF value type lb4_backend (8 bytes) matches no layout tshoot knows, "
                                     "so no version given; 8-byte values fit")


def test_btf_struct_name_must_match():
    renamed = BTFStruct("lb6_backend", 12, BTF_1_15.members)
    assert lbbackends.LB4.layout_from_btf("value", renamed) is None


def test_bytes_of_another_size_than_the_btf_type_are_refused():
    with pytest.raises(UsageError, match="BTF says values are 12 bytes, got 8"):
        lbbackends.LB4.decode("value", bytes(8), btf=BTF_1_15)


def test_decode_entry_passes_the_maps_btf_on():
    obj, dkey, dvalue = decode_entry(lbbackends.LB4, bytes(4), VALUE, (1, 19, 4), value_btf=BTF_1_15)
    assert obj["value"]["cluster_id"] == 7 and "zone" not in obj["value"] and "BTF" in dvalue.reason
    assert dkey.reason == "Cilium 1.19.4 uses __u32"
