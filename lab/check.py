"""`lab cilium check`: the guide's `make cilium-check | grep health`, on every agent at once.

Each agent runs `cilium-dbg status` (`cilium status` before 1.15) through the API's exec; the lines the
guide reads are parsed into one row per node: health daemon, controllers, cluster health, kube-proxy
replacement. The lab configures kube-proxy replacement, so an agent reporting it off is unhealthy too.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

# `cilium status` prints "Key:   value" lines; these are the ones the check reads.
FIELDS = {
    "Cilium": "cilium",
    "Cilium health daemon": "health_daemon",
    "Controller Status": "controllers",
    "Cluster health": "cluster_health",
    "KubeProxyReplacement": "kube_proxy_replacement",
}
LINE = re.compile(r"^([A-Za-z][A-Za-z0-9 ]*?):\s+(\S.*)$")
RATIO = re.compile(r"^(\d+)/(\d+)\b")
KPR_ON = ("True", "Strict")  # 1.15+ prints True/False; older releases Strict/Partial/Probe/Disabled


@dataclass
class AgentStatus:
    node: str
    pod: str
    cilium: str | None = None  # "Ok", "Warning", "Failure"
    health_daemon: str | None = None
    controllers: tuple[int, int] | None = None  # (healthy, total)
    cluster_health: tuple[int, int] | None = None  # (reachable, total)
    kube_proxy_replacement: str | None = None  # "True", "False", "Strict", …
    cluster_health_text: str | None = None  # the line as printed when it is not "N/M reachable"
    error: str | None = None  # the exec failed: no status at all

    def problems(self) -> list[str]:
        if self.error:
            return [self.error]
        found = []
        if self.cilium != "Ok":
            found.append(f"Cilium is {self.cilium or 'not reported'}")
        if self.health_daemon != "Ok":
            found.append(f"health daemon is {self.health_daemon or 'not reported'}")
        if self.controllers is None:
            found.append("controller status not reported")
        elif self.controllers[0] < self.controllers[1]:
            found.append(f"{self.controllers[1] - self.controllers[0]} controllers failing")
        if self.cluster_health is None:
            found.append(f"cluster health: {self.cluster_health_text or 'not reported'}")
        elif self.cluster_health[0] < self.cluster_health[1]:
            found.append(f"{self.cluster_health[1] - self.cluster_health[0]} nodes unreachable")
        if self.kube_proxy_replacement not in KPR_ON:
            found.append(f"kube-proxy replacement is {self.kube_proxy_replacement or 'not reported'}")
        return found

    @property
    def healthy(self) -> bool:
        return not self.problems()

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("controllers", "cluster_health"):
            if out[key] is not None:
                out[key] = {"healthy" if key == "controllers" else "reachable": out[key][0], "total": out[key][1]}
        out["healthy"] = self.healthy
        out["problems"] = self.problems()
        return out


def parse_status(text: str, node: str, pod: str) -> AgentStatus:
    """The fields of `cilium-dbg status` text output (brief form, as the guide shows it)."""
    status = AgentStatus(node=node, pod=pod)
    for line in text.splitlines():
        match = LINE.match(line.rstrip())
        if not match or match.group(1) not in FIELDS:
            continue
        attribute, value = FIELDS[match.group(1)], match.group(2).strip()
        if attribute in ("controllers", "cluster_health"):
            ratio = RATIO.match(value)
            setattr(status, attribute, (int(ratio.group(1)), int(ratio.group(2))) if ratio else None)
            if attribute == "cluster_health" and not ratio:
                status.cluster_health_text = " ".join(value.split())
        else:
            setattr(status, attribute, value.split()[0])
    return status


def status_command(has_cilium_dbg: bool) -> list[str]:
    return ["cilium-dbg" if has_cilium_dbg else "cilium", "status"]
