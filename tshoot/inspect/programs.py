"""One BPF program with its maps (`tshoot prog show`), and the programs on a cgroup (`tshoot cgroup
show`): the models both backends fill, and the readers for bpftool's JSON (pod backend)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

CILIUM_CGROUP_ROOT = "/run/cilium/cgroupv2"
BPF_STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"
STATS_OFF = ("run counts and run times are not counted: the kernel's BPF statistics are off "
             "(sysctl -w kernel.bpf_stats_enabled=1 on the node turns them on, =0 off again; each run then costs "
             "two clock reads)")
STATS_UNSAID = ("no run counts from the agent's bpftool: the kernel's BPF statistics are off on the node, or these "
                "programs never ran (sysctl -w kernel.bpf_stats_enabled=1 turns them on)")


def bpf_stats_enabled() -> bool:
    """Whether this machine's kernel counts program runs (kernel.bpf_stats_enabled, off by default)."""
    try:
        with open(BPF_STATS_SYSCTL) as f:
            return f.read().strip() not in ("", "0")
    except OSError:
        return False


def run_stats(entry: dict) -> tuple[int | None, int | None]:
    """(run count, run time in ns) from a `bpftool -j prog show` object: bpftool prints them only when the
    kernel counted something (run_time_ns != 0)."""
    if "run_cnt" not in entry:
        return None, None
    return entry["run_cnt"], entry.get("run_time_ns", 0)


@dataclass
class MapRef:
    id: int
    name: str | None = None
    type: str | None = None
    pinned: str | None = None  # its pinned name: the kernel truncates map names to 15 characters


@dataclass
class ProgramShow:
    """What `bpftool prog show id N` says, the maps named."""

    id: int
    type: str
    name: str
    tag: str
    gpl: bool
    loaded_at: int     # seconds since the epoch
    uid: int
    xlated: int        # bytes
    jited: int
    memlock: int | None
    btf_id: int
    maps: list[MapRef] = field(default_factory=list)
    node: str | None = None
    run_count: int | None = None   # None: the kernel's BPF statistics are off (notes say how to turn them on)
    run_time_ns: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def loaded_at_text(self) -> str:
        """bpftool's local-time format: 2020-12-20T09:52:11+0000."""
        return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.loaded_at))

    def to_dict(self) -> dict:
        return asdict(self) | {"loaded_at_text": self.loaded_at_text}


def program_from_bpftool(entry: dict, maps: dict[int, dict]) -> ProgramShow:
    """From one object of `bpftool -j prog show` and `bpftool -j map show` indexed by id (with -f, the maps'
    pinned paths name them)."""
    run_count, run_time = run_stats(entry)
    return ProgramShow(
        id=entry["id"], type=entry["type"], name=entry.get("name", ""), tag=entry["tag"],
        gpl=entry.get("gpl_compatible", False), loaded_at=entry["loaded_at"], uid=entry["uid"],
        xlated=entry.get("bytes_xlated", 0), jited=entry.get("bytes_jited", 0), memlock=entry.get("bytes_memlock"),
        btf_id=entry.get("btf_id", 0),
        maps=[MapRef(id=i, name=maps.get(i, {}).get("name"), type=maps.get(i, {}).get("type"),
                     pinned=pinned_name(maps.get(i, {}).get("pinned") or []))
              for i in entry.get("map_ids", [])],
        run_count=run_count, run_time_ns=run_time, notes=[] if run_count is not None else [STATS_UNSAID])


def pinned_name(paths: list[str]) -> str | None:
    """The name a map is pinned under (its first pin's file name)."""
    return paths[0].rsplit("/", 1)[-1] if paths else None


@dataclass
class CgroupAttachment:
    attach_type: str       # libbpf's name: cgroup_inet4_connect, …
    prog_id: int
    prog_name: str | None
    flags: str             # "", "multi", "override" (bpftool's words)
    link_id: int | None = None
    pinned: list[str] = field(default_factory=list)   # bpffs paths of the link


@dataclass
class Cgroup:
    path: str
    attachments: list[CgroupAttachment] = field(default_factory=list)


@dataclass
class CgroupShow:
    root: str
    effective: bool
    node: str | None
    cgroups: list[Cgroup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def cgroup_from_bpftool(path: str, entries: list[dict], links: list[dict], cgroup_id: int | None) -> Cgroup:
    """From `bpftool -j cgroup show PATH` (or one element of `cgroup tree`) and `bpftool -j -f link show`."""
    by_hook = {(link["prog_id"], link.get("attach_type")): link for link in links
               if link.get("type") == "cgroup" and cgroup_id is not None and link.get("cgroup_id") == cgroup_id}
    cgroup = Cgroup(path=path)
    for entry in entries:
        link = by_hook.get((entry["id"], entry["attach_type"]))
        cgroup.attachments.append(CgroupAttachment(
            attach_type=entry["attach_type"], prog_id=entry["id"], prog_name=entry.get("name"),
            flags=entry.get("attach_flags", ""), link_id=link["id"] if link else None,
            pinned=list(link.get("pinned", [])) if link else []))
    return cgroup
