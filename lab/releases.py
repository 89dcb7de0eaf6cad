"""The Cilium releases the lab's templates know, with everything pinned for each: images by tag and
digest (the digests the chart's release commits pin, never invented), the kind node image inside the
Kubernetes range that release is tested on, and the smallest kernel it supports.

Only these releases can be rendered: a digest is a fact to copy, not something to guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from tshoot.core.errors import UsageError
from tshoot.core.version import LATEST_PATCH
from tshoot.core.version import parse as parse_version
from tshoot.core.version import show as show_version

KIND_VERSION = "v0.32.0"  # the kind release whose node images are pinned below (they need kind >= v0.32.0)


@dataclass(frozen=True)
class NodeImage:
    kubernetes: str  # "1.34.8"
    reference: str  # kindest/node:v1.34.8@sha256:…

    @property
    def minor(self) -> str:
        return ".".join(self.kubernetes.split(".")[:2])


@dataclass(frozen=True)
class Release:
    version: str
    agent_image: str
    operator_image: str
    node_image: NodeImage
    tested_kubernetes: tuple[str, str]  # the Kubernetes minors Cilium's CI tests this release on
    min_kernel: tuple[int, int, int]

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])

    @property
    def has_cilium_dbg(self) -> bool:
        """The in-agent CLI is `cilium-dbg` from 1.15 on, `cilium` before."""
        return self.minor >= 15

    def node_image_tested(self) -> bool:
        low, high = (tuple(int(p) for p in v.split(".")) for v in self.tested_kubernetes)
        return low <= tuple(int(p) for p in self.node_image.minor.split(".")) <= high


NODE_1_34 = NodeImage("1.34.8", "kindest/node:v1.34.8@sha256:02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256")
NODE_1_33 = NodeImage("1.33.12", "kindest/node:v1.33.12@sha256:3f5c8443c620245e4d355cfe09e96a91ead32ceaa569d3f1ca9edf0cb2fe2ff4")

RELEASES: dict[str, Release] = {r.version: r for r in (
    Release("1.19.4",
            "quay.io/cilium/cilium:v1.19.4@sha256:2eb67991eaa9368ba199c2fac2c573cb0ffdeb79184533344f42fc9a7ff6af3c",
            "quay.io/cilium/operator-generic:v1.19.4@sha256:1aa2b62735e7d8ab49ee840ae59c346932024c88901579121395c1271b435f71",
            NODE_1_34, ("1.31", "1.34"), (5, 10, 0)),
    Release("1.18.3",
            "quay.io/cilium/cilium:v1.18.3@sha256:5649db451c88d928ea585514746d50d91e6210801b300c897283ea319d68de15",
            "quay.io/cilium/operator-generic:v1.18.3@sha256:b5a0138e1a38e4437c5215257ff4e35373619501f4877dbaf92c89ecfad81797",
            NODE_1_33, ("1.30", "1.33"), (5, 10, 0)),
    # kind v0.32.0 builds no node image inside 1.16's tested range (1.27-1.30): the oldest one it has is
    # used, and `lab up` says so.
    Release("1.16.15",
            "quay.io/cilium/cilium:v1.16.15@sha256:c0fa87d70a7ba624fbe581d40a7b7e9e8773a6efd4bb17d0bd14ff854039ec75",
            "quay.io/cilium/operator-generic:v1.16.15@sha256:fea37022f858272c27cefe6b4959d45e2ca03d957decbfa210ce35931f346ecd",
            NODE_1_33, ("1.27", "1.30"), (4, 19, 57)),
)}
DEFAULT_VERSION = "1.19.4"

NETSHOOT_IMAGE = "nicolaka/netshoot:v0.16"  # the reference gives the tag only (no digest): pinned by tag


def release(text: str | None = None) -> Release:
    """The release for --cilium-version: '1.19.4', 'v1.18', '1.16' (a minor means the patch the lab pins)."""
    if not text:
        return RELEASES[DEFAULT_VERSION]
    major, minor, patch = parse_version(text)
    for candidate in RELEASES.values():
        c_major, c_minor, c_patch = parse_version(candidate.version)
        if (major, minor) == (c_major, c_minor) and patch in (c_patch, LATEST_PATCH):
            return candidate
    known = ", ".join(RELEASES)
    raise UsageError(f"--cilium-version {show_version((major, minor, patch))}: the lab's templates pin the "
                     f"images of Cilium {known} only (pick one of those)")
