"""One BPF program with its maps (`tshoot prog show`), and the programs on a cgroup (`tshoot cgroup
show`): the models both backends fill, and the readers for bpftool's JSON (pod backend)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

CILIUM_CGROUP_ROOT = "/run/cilium/cgroupv2"


@dataclass
class MapRef:
    id: int
    name: str | None = None
    type: str | None = None


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

    @property
    def loaded_at_text(self) -> str:
        """bpftool's local-time format: 2020-12-20T09:52:11+0000."""
        return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.loaded_at))

    def to_dict(self) -> dict:
        return asdict(self) | {"loaded_at_text": self.loaded_at_text}


def program_from_bpftool(entry: dict, maps: dict[int, dict]) -> ProgramShow:
    """From one object of `bpftool -j prog show` and `bpftool -j map show` indexed by id."""
    return ProgramShow(
        id=entry["id"], type=entry["type"], name=entry.get("name", ""), tag=entry["tag"],
        gpl=entry.get("gpl_compatible", False), loaded_at=entry["loaded_at"], uid=entry["uid"],
        xlated=entry.get("bytes_xlated", 0), jited=entry.get("bytes_jited", 0), memlock=entry.get("bytes_memlock"),
        btf_id=entry.get("btf_id", 0),
        maps=[MapRef(id=i, name=maps.get(i, {}).get("name"), type=maps.get(i, {}).get("type"))
              for i in entry.get("map_ids", [])])


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
