"""cilium_metrics: the datapath's own packet and byte counters, by reason (forwarded, or why dropped) and direction.

A per-CPU hash (BPF_MAP_TYPE_PERCPU_HASH, 1024 entries, all versions: Go pkg/maps/metricsmap/metricsmap.go).
The datapath bumps one entry per packet it forwards or drops (bpf/lib/metrics.h update_metrics(); drops
through send_drop_notify*() in bpf/lib/drop.h, forwards through _update_trace_metrics() in bpf/lib/trace.h).
Each CPU counts on its own; the answer is their sum, as `cilium-dbg bpf metrics list` prints it
(cilium-dbg/cmd/bpf_metrics_list.go). tshoot.mapio.read sums them (CiliumMap.fold_cpus).

Key, `struct metrics_key` (bpf/lib/common.h up to 1.18, bpf/lib/metrics.h in 1.19), 8 bytes:
* reason u8 @0: 0 forwarded, REASON_* below 130, or a drop: the C code is negative (`DROP_POLICY -133`) and
  the key stores its absolute value (bpf/lib/drop.h: `-reason` up to 1.11, __DROP_REASON() from 1.12).
* dir:2 @1 (bits 0-1): METRIC_INGRESS 1, METRIC_EGRESS 2, METRIC_SERVICE 3 (enum metric_dir from 1.12).
* 1.9-1.15: `__u16 reserved[3]`. From 1.16.0: `__u16 line` @2 (__MAGIC_LINE__), `__u8 file` @4
  (__MAGIC_FILE__ = __id_for_file(__FILE_NAME__), bpf/lib/source_info.h), `__u8 reserved[3]`.
Value, `struct metrics_value`, per CPU: count u64 (packets) @0, bytes u64 @8.

Names change with the version: a few drop codes were renamed (136, 143/144, 159, 161, 186) and the source
file ids were renumbered (1.18 reused 110, 1.19 dropped arp.h and encrypt.h). So the key has one layout
per naming era — the same C struct, different names — and a key decoded without a version whose names differ
between eras asks for --cilium-version. Tables: shared/reference/cilium-datapath-facts.md §1-2, checked
against bpf/lib/common.h (v1.9 "DROP_UNUSED3 -136", v1.12 "DROP_NAT_46X64_DISABLED -161"),
bpf/lib/source_info.h __id_for_file() (v1.16, v1.19), pkg/monitor/api/drop.go (the texts), pkg/monitor/api/files.go.
"""

from __future__ import annotations

from tshoot.core.errors import FieldError, UsageError
from tshoot.core.layout import PAD, Field, Layout
from tshoot.core.version import Range, Version, show
from tshoot.maps.base import CiliumMap, Pin

# --- reasons ---------------------------------------------------------------------------------------
# code -> (C name, the text `cilium-dbg monitor` and `bpf metrics list` print: pkg/monitor/api/drop.go errors)
REASONS = {
    0: ("REASON_FORWARDED", "Success"),
    2: ("DropInvalid", "Invalid packet"),  # Go's constant (pkg/monitor/api/drop.go): no C define; IsDrop() counts it
    3: ("REASON_PLAINTEXT", "Interface"),
    4: ("REASON_DECRYPT", "Interface Decrypted"),
    5: ("REASON_LB_NO_BACKEND_SLOT", "LB, sock cgroup: No backend slot entry found"),
    6: ("REASON_LB_NO_BACKEND", "LB, sock cgroup: No backend entry found"),
    7: ("REASON_LB_REVNAT_UPDATE", "LB, sock cgroup: Reverse entry update failed"),
    8: ("REASON_LB_REVNAT_STALE", "LB, sock cgroup: Reverse entry stale"),
    9: ("REASON_FRAG_PACKET", "Fragmented packet"),
    10: ("REASON_FRAG_PACKET_UPDATE", "Fragmented packet entry update failed"),
    11: ("REASON_MISSED_CUSTOM_CALL", "Missed tail call to custom program"),
    12: ("REASON_DECRYPTING", "Interface Decrypting"),
    13: ("REASON_ENCRYPTING", "Interface Encrypting"),
    14: ("REASON_LB_REVNAT_DELETE", "LB: sock cgroup: Reverse entry delete succeeded"),
    15: ("REASON_MTU_ERROR_MSG", "MTU error message"),
    130: ("DROP_UNUSED1", "Invalid source mac"),
    131: ("DROP_UNUSED2", "Invalid destination mac"),
    132: ("DROP_INVALID_SIP", "Invalid source ip"),
    133: ("DROP_POLICY", "Policy denied"),
    134: ("DROP_INVALID", "Invalid packet"),
    135: ("DROP_CT_INVALID_HDR", "CT: Truncated or invalid header"),
    136: ("DROP_FRAG_NEEDED", "Fragmentation needed"),
    137: ("DROP_CT_UNKNOWN_PROTO", "CT: Unknown L4 protocol"),
    138: ("DROP_UNUSED4", "CT: Can't create entry from packet"),
    139: ("DROP_UNKNOWN_L3", "Unsupported L3 protocol"),
    140: ("DROP_MISSED_TAIL_CALL", "Missed tail call"),
    141: ("DROP_WRITE_ERROR", "Error writing to packet"),
    142: ("DROP_UNKNOWN_L4", "Unknown L4 protocol"),
    143: ("DROP_UNKNOWN_ICMP4_CODE", "Unknown ICMPv4 code"),
    144: ("DROP_UNKNOWN_ICMP4_TYPE", "Unknown ICMPv4 type"),
    145: ("DROP_UNKNOWN_ICMP6_CODE", "Unknown ICMPv6 code"),
    146: ("DROP_UNKNOWN_ICMP6_TYPE", "Unknown ICMPv6 type"),
    147: ("DROP_NO_TUNNEL_KEY", "Error retrieving tunnel key"),
    148: ("DROP_UNUSED5", "Error retrieving tunnel options"),
    149: ("DROP_UNUSED6", "Invalid Geneve option"),
    150: ("DROP_UNKNOWN_TARGET", "Unknown L3 target address"),
    151: ("DROP_UNROUTABLE", "Stale or unroutable IP"),
    152: ("DROP_UNUSED7", "No matching local container found"),
    153: ("DROP_CSUM_L3", "Error while correcting L3 checksum"),
    154: ("DROP_CSUM_L4", "Error while correcting L4 checksum"),
    155: ("DROP_CT_CREATE_FAILED", "CT: Map insertion failed"),
    156: ("DROP_INVALID_EXTHDR", "Invalid IPv6 extension header"),
    157: ("DROP_FRAG_NOSUPPORT", "IP fragmentation not supported"),
    158: ("DROP_NO_SERVICE", "Service backend not found"),
    159: ("DROP_UNSUPP_SERVICE_PROTO", None),  # no Go text in any version: Cilium prints the number
    160: ("DROP_NO_TUNNEL_ENDPOINT", "No tunnel/encapsulation endpoint (datapath BUG!)"),
    161: ("DROP_NAT_46X64_DISABLED", "NAT 46/64 not enabled"),
    162: ("DROP_EDT_HORIZON", "Reached EDT rate-limiting drop horizon"),
    163: ("DROP_UNKNOWN_CT", "Unknown connection tracking state"),
    164: ("DROP_HOST_UNREACHABLE", "Local host is unreachable"),
    165: ("DROP_NO_CONFIG", "No configuration available to perform policy decision"),
    166: ("DROP_UNSUPPORTED_L2", "Unsupported L2 protocol"),
    167: ("DROP_NAT_NO_MAPPING", "No mapping for NAT masquerade"),
    168: ("DROP_NAT_UNSUPP_PROTO", "Unsupported protocol for NAT masquerade"),
    169: ("DROP_NO_FIB", "FIB lookup failed"),
    170: ("DROP_ENCAP_PROHIBITED", "Encapsulation traffic is prohibited"),
    171: ("DROP_INVALID_IDENTITY", "Invalid identity"),
    172: ("DROP_UNKNOWN_SENDER", "Unknown sender"),
    173: ("DROP_NAT_NOT_NEEDED", "NAT not needed"),
    174: ("DROP_IS_CLUSTER_IP", "Is a ClusterIP"),
    175: ("DROP_FRAG_NOT_FOUND", "First logical datagram fragment not found"),
    176: ("DROP_FORBIDDEN_ICMP6", "Forbidden ICMPv6 message"),
    177: ("DROP_NOT_IN_SRC_RANGE", "Denied by LB src range check"),
    178: ("DROP_PROXY_LOOKUP_FAILED", "Socket lookup failed"),
    179: ("DROP_PROXY_SET_FAILED", "Socket assign failed"),
    180: ("DROP_PROXY_UNKNOWN_PROTO", "Proxy redirection not supported for protocol"),
    181: ("DROP_POLICY_DENY", "Policy denied by denylist"),
    182: ("DROP_VLAN_FILTERED", "VLAN traffic disallowed by VLAN filter"),
    183: ("DROP_INVALID_VNI", "Incorrect VNI from VTEP"),
    184: ("DROP_INVALID_TC_BUFFER", "Failed to update or lookup TC buffer"),
    185: ("DROP_NO_SID", "No SID was found for the IP address"),
    186: ("DROP_MISSING_SRV6_STATE", "SRv6 state was removed during tail call"),
    187: ("DROP_NAT46", "L3 translation from IPv4 to IPv6 failed (NAT46)"),
    188: ("DROP_NAT64", "L3 translation from IPv6 to IPv4 failed (NAT64)"),
    189: ("DROP_POLICY_AUTH_REQUIRED", "Authentication required"),
    190: ("DROP_CT_NO_MAP_FOUND", "No conntrack map found"),
    191: ("DROP_SNAT_NO_MAP_FOUND", "No nat map found"),
    192: ("DROP_INVALID_CLUSTER_ID", "Invalid ClusterID"),
    193: ("DROP_DSR_ENCAP_UNSUPP_PROTO", "Unsupported packet protocol for DSR encapsulation"),
    194: ("DROP_NO_EGRESS_GATEWAY", "No egress gateway found"),
    195: ("DROP_UNENCRYPTED_TRAFFIC", "Traffic is unencrypted"),
    196: ("DROP_TTL_EXCEEDED", "TTL exceeded"),
    197: ("DROP_NO_NODE_ID", "No node ID found"),
    198: ("DROP_RATE_LIMITED", "Rate limited"),
    199: ("DROP_IGMP_HANDLED", "IGMP handled"),
    200: ("DROP_IGMP_SUBSCRIBED", "IGMP subscribed"),
    201: ("DROP_MULTICAST_HANDLED", "Multicast handled"),
    202: ("DROP_HOST_NOT_READY", "Host datapath not ready"),
    203: ("DROP_EP_NOT_READY", "Endpoint policy program not available"),
    204: ("DROP_NO_EGRESS_IP", "No Egress IP configured"),
    205: ("DROP_PUNT_PROXY", "Punt to proxy"),
}
# The renames, newest first: (the first version with the name above, code, the name and text before it).
# A code added later keeps its name in older eras: an older datapath never stores it.
RENAMES = [
    ("1.19", 186, "DROP_UNUSED8", "SRv6 state was removed during tail call"),  # bpf/lib/drop_reasons.h v1.19
    ("1.17.8", 143, "DROP_UNKNOWN_ICMP_CODE", "Unknown ICMPv4 code"),  # renamed by 1.17.8 (facts §1.3)
    ("1.17.8", 144, "DROP_UNKNOWN_ICMP_TYPE", "Unknown ICMPv4 type"),
    ("1.15", 159, "DROP_UNUSED8", None),  # DROP_UNSUPP_SERVICE_PROTO from 1.15.0-pre.3
    ("1.12", 161, "DROP_UNUSED9", "Failed to insert into proxymap"),  # bpf/lib/common.h v1.11 vs v1.12
    ("1.10", 136, "DROP_UNUSED3", "CT: Missing TCP ACK flag"),  # bpf/lib/common.h v1.9 vs v1.10
]
DROP_MIN = 130  # pkg/monitor/api/drop.go DropMin; metricsmap IsDrop(): reason == 2 || reason >= DropMin

# --- directions ------------------------------------------------------------------------------------
# METRIC_* (bpf/lib/common.h), named as metricsmap.go's direction names print them
DIRECTIONS = {0: "UNKNOWN", 1: "INGRESS", 2: "EGRESS", 3: "SERVICE"}

# --- source files (__MAGIC_FILE__) -----------------------------------------------------------------
# bpf/lib/source_info.h __id_for_file() = pkg/monitor/api/files.go, per era; 1.16 is the first with a file.
_PROGRAMS = {1: "bpf_host.c", 2: "bpf_lxc.c", 3: "bpf_overlay.c", 4: "bpf_xdp.c", 5: "bpf_sock.c",
             6: "bpf_network.c", 7: "bpf_wireguard.c"}
_HEADERS_1_16 = ["arp.h", "drop.h", "srv6.h", "icmp6.h", "nodeport.h", "lb.h", "mcast.h", "ipv4.h", "conntrack.h",
                 "l3.h", "trace.h", "encap.h", "encrypt.h", "host_firewall.h", "nodeport_egress.h"]  # 114, 115 by 1.17.8
_HEADERS_1_18 = [*_HEADERS_1_16[:9], "local_delivery.h", *_HEADERS_1_16[10:], "ipv6.h", "classifiers.h"]
_HEADERS_1_19 = [h for h in _HEADERS_1_18 if h not in ("arp.h", "encrypt.h")]  # renumbered from 101
FILES = {
    "1.16": {**_PROGRAMS, **dict(enumerate(_HEADERS_1_16, 101))},
    "1.18": {**_PROGRAMS, **dict(enumerate(_HEADERS_1_18, 101))},
    "1.19": {**_PROGRAMS, **dict(enumerate(_HEADERS_1_19, 101))},
}


def _at(text: str) -> Version:
    """'1.17.8' or '1.19' (its first release) as a version."""
    parts = [int(p) for p in text.split(".")] + [0]
    return (parts[0], parts[1], parts[2])


def reasons_of(version: Version) -> dict[int, tuple[str, str | None]]:
    """code -> (C name, Cilium's text) as Cilium `version` names them."""
    table = dict(REASONS)
    for since, code, name, text in RENAMES:
        if version < _at(since):
            table[code] = (name, text)
    return table


def files_of(version: Version) -> dict[int, str]:
    """file id -> source file name as Cilium `version` numbers them (empty before 1.16: keys have no file)."""
    chosen: dict[int, str] = {}
    for since, table in FILES.items():
        if version >= _at(since):
            chosen = table
    return chosen


def is_drop(code: int) -> bool:
    return code == 2 or code >= DROP_MIN


def reason_label(code: int, version: Version) -> str:
    """The text Cilium prints for a code: its description, else the number as DropReason() prints it
    ("%d" up to 1.11, "%d, %d" with the zero extended error from 1.12: pkg/monitor/api/drop.go)."""
    text = reasons_of(version).get(code, (None, None))[1]
    if text is not None:
        return text
    return f"{code}, 0" if version >= (1, 12, 0) else str(code)


def file_name(file_id: int, table: dict[int, str]) -> str | None:
    """As api.BPFFileName() prints it: the name, or unknown(N); None for 0 (no file recorded)."""
    return table.get(file_id, f"unknown({file_id})") if file_id else None


# --- layouts ---------------------------------------------------------------------------------------
def _key_without_file() -> Layout:
    return Layout("metrics_key", 8, [Field("reason", 0, 1), Field("dir", 1, 1, bits=(0, 2)),
                                     Field("pad", 1, 1, bits=(2, 6)), Field("reserved", 2, 6, PAD)])


def _key_with_file() -> Layout:
    return Layout("metrics_key", 8, [Field("reason", 0, 1), Field("dir", 1, 1, bits=(0, 2)),
                                     Field("pad", 1, 1, bits=(2, 6)), Field("line", 2, 2), Field("file", 4, 1),
                                     Field("reserved", 5, 3, PAD)])


# One key layout per naming era (the struct changes once, in 1.16; the names at every boundary below).
ERAS = ["1.9", "1.10", "1.12", "1.15", "1.16", "1.17.8", "1.18", "1.19"]
_ERA_RANGES = [Range(f"{low}-{high}" if high else low) for low, high in zip(ERAS, [*ERAS[1:], None])]
KEYS = [(r, _key_with_file() if _at(low) >= (1, 16, 0) else _key_without_file()) for r, low in zip(_ERA_RANGES, ERAS)]
# The version each key layout names its fields for (its era's first release).
_ERA_OF = {id(layout): _at(low) for (_, layout), low in zip(KEYS, ERAS)}
VALUE = Layout("metrics_value", 16, [Field("count", 0, 8), Field("bytes", 8, 8)])
_DIRECTION_CODE = {name: code for code, name in DIRECTIONS.items()}


class Metrics(CiliumMap):
    short = "metrics"
    summary = "datapath packet/byte counters by forward or drop reason, direction (and source line 1.16+) (per-CPU hash)"
    pins = [Pin("1.9", "cilium_metrics", "percpu_hash", 1024)]
    keys = KEYS
    values = [(Range("1.9"), VALUE)]
    per_cpu = True
    coded_members = ("reason", "file")

    def add_key_arguments(self, parser):
        parser.add_argument("reason", metavar="REASON",
                            help="a reason code (133) or Cilium's name for it (DROP_POLICY, REASON_FORWARDED; "
                                 "case and the DROP_/REASON_ prefix optional)")
        parser.add_argument("direction", metavar="DIRECTION", choices=[d.lower() for d in _DIRECTION_CODE],
                            help="ingress, egress, service or unknown")
        parser.add_argument("--line", type=int, default=0, metavar="N", help="source line of the counter (1.16+)")
        parser.add_argument("--file", default=None, metavar="NAME|ID",
                            help="source file of the counter, bpf_lxc.c or its id (1.16+)")

    def key(self, version: Version, *, reason: str | int, direction: str, line: int = 0,
            file: str | None = None) -> dict:
        code = reason_code(str(reason), version)
        fields = {"code": code, "direction": direction.upper()}
        files = files_of(version)
        if line or file:
            if not files:
                raise FieldError("line" if line else "file", line or file,
                                 f"Cilium {show(version)} counters have no source file or line (1.16+): leave them "
                                 f"out, or say the node runs 1.16 or newer")
            fields["line"] = line
            fields["file"] = file_name(_file_id(file, files), files) if file else None
        return fields

    def key_fields(self, raw, layout) -> dict:
        version = _ERA_OF[id(layout)]
        code = raw["reason"]
        name, text = reasons_of(version).get(code, (None, None))
        fields = {"reason": name or f"unknown({code})", "code": code,
                  "description": text if text is not None else reason_label(code, version),
                  "drop": is_drop(code), "direction": DIRECTIONS[raw["dir"]]}
        if "file" in raw:
            fields["line"] = raw["line"]
            fields["file"] = file_name(raw["file"], files_of(version))
        return fields

    def key_raw(self, fields, layout) -> dict:
        raw = {"reason": fields["code"], "dir": _DIRECTION_CODE[fields["direction"]]}
        if fields.get("line") or fields.get("file"):
            if "file" not in layout.by_name:
                raise UsageError("metrics keys of Cilium before 1.16 have no source file or line")
            raw["line"] = fields.get("line", 0)
            raw["file"] = _file_id(fields.get("file") or "0", files_of(_ERA_OF[id(layout)]))
        return raw

    def layout_from_btf(self, which, btf):
        # A key's BTF names the struct (with or without line and file), which several naming eras share: it
        # cannot say which release's reason and file names apply, so the version (or the bytes) chooses.
        return None if which == "key" else super().layout_from_btf(which, btf)

    def decode(self, which, data, version=None, btf=None, within=None, role=None):
        return super().decode(which, data, version, None if which == "key" else btf, within, role)

    def _decode_by_size(self, which, data, within=None, role=None):
        # Keys before 1.16 keep bytes 2-7 zero (reserved); a line or file there says 1.16+, where the
        # file tables then decide whether the version is needed.
        if which == "key" and any(data[2:8]):
            since = Range("1.16")
            within = since if within is None else within.intersect(since)
        return super()._decode_by_size(which, data, within, role)

    def value_fields(self, raw, layout) -> dict:
        return {"packets": raw["count"], "bytes": raw["bytes"]}

    def value_raw(self, fields, layout) -> dict:
        return {"count": fields["packets"], "bytes": fields["bytes"]}


def reason_code(text: str, version: Version) -> int:
    """'133', 'DROP_POLICY', 'policy', 'forwarded' -> the code, by `version`'s names."""
    if text.isdigit():
        code = int(text)
        if code > 255:
            raise UsageError(f"reason {text}: codes are one byte (0-255)")
        return code
    wanted = text.upper()
    for code, (name, _) in reasons_of(version).items():
        if name in (wanted, f"DROP_{wanted}", f"REASON_{wanted}"):
            return code
    raise UsageError(f"unknown reason {text!r} for Cilium {show(version)} (a code such as 133, or a name such as "
                     f"DROP_POLICY, DROP_EP_NOT_READY, REASON_FORWARDED)")


def _file_id(text: str, files: dict[int, str]) -> int:
    """'bpf_lxc.c', '2', 'unknown(9)' -> the file id."""
    if text.startswith("unknown(") and text.endswith(")"):
        text = text[8:-1]
    if text.isdigit():
        return int(text)
    for file_id, name in files.items():
        if text == name:
            return file_id
    raise UsageError(f"unknown source file {text!r} (known: {', '.join(files.values())}; or its id)")


MAP = Metrics()
