"""Conntrack lifetimes in time: what a ct_entry's `lifetime` means on the node that wrote it.

`lifetime` (u32 at offset 32 of struct ct_entry, every version) is an absolute expiry in bpf_mono_now()
units: __ct_update_timeout() in bpf/lib/conntrack.h stores bpf_mono_now() + bpf_sec_to_mono(timeout).
bpf_mono_now() (bpf/lib/mono.h up to 1.18, bpf/lib/time.h in 1.19) is, per the agent's clock source:

* ktime (the default): bpf_ktime_get_ns() / 1e9, whole seconds of CLOCK_MONOTONIC;
* jiffies (enable-bpf-clock-probe, and a kernel with bpf_jiffies64): jiffies64 >> 8 (BPF_MONO_SCALER),
  a timeout becoming (seconds * KERNEL_HZ) >> 8.

The agent's GC compares the same way (pkg/maps/ctmap: an entry is expired when lifetime < now). Helm
renders enable-bpf-clock-probe "true" up to 1.13.4 and "false" from 1.13.5 (values.yaml bpfClockProbe),
which is the default assumed when the cluster's cilium-config does not say.
"""

from __future__ import annotations

from dataclasses import dataclass

from tshoot.core.version import Version

MONO_SCALER = 8  # BPF_MONO_SCALER: jiffies are shifted right by 8
CLOCK_PROBE_KEY = "enable-bpf-clock-probe"  # cilium-config
HELM_PROBE_UNTIL = (1, 13, 5)  # Helm's default renders the probe "true" before 1.13.5
HZ_SAMPLE_SECONDS = 0.25  # how long KERNEL_HZ is measured over (Cilium's probes.KernelHZ samples the same way)


@dataclass
class ClockSource:
    """Which clock a node's datapath stamps conntrack entries with, and from where tshoot knows it."""

    mode: str  # "ktime" or "jiffies"
    said_by: str


def clock_source(mode: str | None, config: dict[str, str] | None, version: Version | None) -> ClockSource:
    """The flag when given, else cilium-config's enable-bpf-clock-probe, else the Helm default of the version."""
    if mode is not None:
        return ClockSource(mode, f"--ct-clock {mode}")
    if config is not None and CLOCK_PROBE_KEY in config:
        probe = config[CLOCK_PROBE_KEY].strip().lower() == "true"
        return ClockSource("jiffies" if probe else "ktime", f"cilium-config {CLOCK_PROBE_KEY}={config[CLOCK_PROBE_KEY]}"
                           + (" (jiffies where the kernel has bpf_jiffies64)" if probe else ""))
    if version is not None and version < HELM_PROBE_UNTIL:
        return ClockSource("jiffies", "Helm's default before 1.13.5 (enable-bpf-clock-probe true); --ct-clock ktime "
                                      "if the agent reports 'Clock Source for BPF: ktime'")
    return ClockSource("ktime", "the default clock source (enable-bpf-clock-probe off); --ct-clock jiffies if the "
                                "agent reports 'Clock Source for BPF: jiffies'")


@dataclass
class NodeClock:
    """A node's now in conntrack units, and how to turn lifetimes into seconds from now."""

    source: ClockSource
    now: int       # in lifetime units
    hz: int | None  # KERNEL_HZ, jiffies mode only

    def seconds_left(self, lifetime: int) -> int:
        """Seconds until the entry expires (negative: expired that long ago); u32 arithmetic as the datapath's."""
        delta = (lifetime - self.now + (1 << 31)) % (1 << 32) - (1 << 31)
        if self.source.mode == "jiffies":
            return (delta << MONO_SCALER) // self.hz
        return delta

    def explain(self, lifetime: int) -> dict:
        left = self.seconds_left(lifetime)
        said = {"expires_in": f"{left}s"} if left >= 0 else {"expired": f"{-left}s ago"}
        return {**said, "clock": self.source.mode}


def node_clock(samples, source: ClockSource) -> NodeClock:
    """From the node's clocks: `samples()` -> (CLOCK_MONOTONIC ns, jiffies), read on the node; jiffies mode
    measures KERNEL_HZ from two samples."""
    import time

    monotonic_ns, jiffies = samples()
    if source.mode == "ktime":
        return NodeClock(source, monotonic_ns // 1_000_000_000, None)
    time.sleep(HZ_SAMPLE_SECONDS)
    later_ns, later_jiffies = samples()
    elapsed = (later_ns - monotonic_ns) / 1e9
    hz = min((100, 250, 300, 1000), key=lambda candidate: abs(candidate - (later_jiffies - jiffies) / elapsed))
    return NodeClock(source, later_jiffies >> MONO_SCALER, hz)
