"""Where map bytes come from: this machine's pinned maps (local), or a Cilium agent reached through the
Kubernetes API (pod). Both answer the same questions in bytes; decoding happens above them (tshoot.mapio.read).

A backend is bound to one node. `--all-nodes` is many pod backends sharing one API client.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from tshoot.core.errors import TshootError
from tshoot.core.version import Version

PIN_DIR = "tc/globals"  # under the bpffs mount, where Cilium pins its global maps
DEFAULT_BPFFS = "/sys/fs/bpf"
LPM_TRIE = "lpm_trie"
PROG_ARRAY = "prog_array"  # a slot's value is a program; from user space, its id
TIMER_LIST = "/proc/timer_list"  # the node's clocks, readable where the agent runs (root)


def clocks_from_timer_list(text: str) -> tuple[int, int]:
    """(CLOCK_MONOTONIC ns, jiffies) from /proc/timer_list: "now at N nsecs" is ktime_get(), "jiffies: N" the
    tick counter (where Cilium's GetJtime read jiffies up to 1.13.3), read together."""
    now = jiffies = None
    for line in text.splitlines():
        if now is None and line.startswith("now at "):
            now = int(line.split()[2])
        elif jiffies is None and line.startswith("jiffies: "):
            jiffies = int(line.split()[1])
        if now is not None and jiffies is not None:
            return now, jiffies
    raise TshootError(f"{TIMER_LIST} names no 'now at' or 'jiffies:' line: the node's clocks cannot be read")


# Map types whose lookups answer one value per possible CPU, each rounded up to 8 bytes (both backends give
# them so; CiliumMap.fold_cpus sums them).
PER_CPU_TYPES = {"percpu_hash", "percpu_array", "lru_percpu_hash", "percpu_cgroup_storage"}


def lpm_prefix(key: bytes) -> tuple[int, int, int]:
    """An LPM trie key -> (prefixlen, data as a big number, data bits). The trie compares data bits from the
    first byte's most significant bit; prefixlen (host order) counts them (kernel/bpf/lpm_trie.c)."""
    return int.from_bytes(key[:4], "little"), int.from_bytes(key[4:], "big"), 8 * (len(key) - 4)


def lpm_key(key: bytes, prefixlen: int) -> bytes:
    """The LPM trie key of `key`'s first `prefixlen` data bits (the others zero)."""
    _, data, bits = lpm_prefix(key)
    kept = data >> (bits - prefixlen) << (bits - prefixlen) if prefixlen else 0
    return prefixlen.to_bytes(4, "little") + kept.to_bytes(len(key) - 4, "big")


class NotPinned(TshootError):
    """The map is not pinned on that node (another name may be: maps were renamed across versions)."""


class MapInfo:
    """What the kernel says about one pinned map (bpftool map show)."""

    def __init__(self, name: str, path: str, map_type: str, key_size: int, value_size: int, max_entries: int,
                 flags: int = 0, map_id: int | None = None, btf_id: int = 0, entries: int | None = None,
                 btf_key_type_id: int = 0, btf_value_type_id: int = 0):
        self.name, self.path, self.map_type = name, path, map_type
        self.key_size, self.value_size, self.max_entries = key_size, value_size, max_entries
        self.flags, self.map_id, self.btf_id, self.entries = flags, map_id, btf_id, entries
        # The key and value types in the map's BTF (0 when unknown: bpftool map show does not say them)
        self.btf_key_type_id, self.btf_value_type_id = btf_key_type_id, btf_value_type_id

    def __repr__(self) -> str:
        return f"MapInfo({self.name}, {self.map_type}, key {self.key_size}, value {self.value_size})"

    def as_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "type": self.map_type, "key_size": self.key_size,
                "value_size": self.value_size, "max_entries": self.max_entries, "entries": self.entries,
                "flags": self.flags, "id": self.map_id, "btf_id": self.btf_id or None}


class Entries:
    """A dump: every key and every value, each concatenated (bytes at C speed, no object per entry)."""

    def __init__(self, key_size: int, value_size: int, keys: bytes, values: bytes):
        if len(keys) % max(key_size, 1) or len(values) % max(value_size, 1) or \
                len(keys) // max(key_size, 1) != len(values) // max(value_size, 1):
            raise ValueError("keys and values do not hold the same count of whole entries")
        self.key_size, self.value_size, self.keys, self.values = key_size, value_size, keys, values

    def __len__(self) -> int:
        return len(self.keys) // self.key_size if self.key_size else 0

    def pairs(self):
        ks, vs = self.key_size, self.value_size
        for i in range(len(self)):
            yield self.keys[i * ks : (i + 1) * ks], self.values[i * vs : (i + 1) * vs]

    def slice(self, start: int, stop: int) -> "Entries":
        ks, vs = self.key_size, self.value_size
        return Entries(ks, vs, self.keys[start * ks : stop * ks], self.values[start * vs : stop * vs])


class Backend(ABC):
    """One node's maps. Methods raise TshootError with one line naming the problem and the fix."""

    kind = ""  # "local" or "pod"
    node = ""  # the node's name (this host's name for local)
    version: Version | None = None  # the agent's Cilium version when the backend knows it

    @abstractmethod
    def pin_path(self, name: str) -> str:
        """Where the map is pinned, as the node (and bpftool in the agent) sees it."""

    @abstractmethod
    def info(self, name: str) -> MapInfo:
        """The pinned map's info; TshootError when it is not pinned."""

    @abstractmethod
    def lookup(self, info: MapInfo, key: bytes) -> bytes | None:
        """The kernel's answer to a lookup of `key` (longest-prefix match on an LPM trie), None for no entry."""

    @abstractmethod
    def dump(self, info: MapInfo) -> Entries:
        """Every entry of the map."""

    @abstractmethod
    def first_entry(self, info: MapInfo, keys: list[bytes]) -> int | None:
        """The index of the first of `keys` that is itself an entry of an LPM trie (that very prefix, not the
        longest one covering it), None when none is: asked of the kernel, without reading the map."""

    @abstractmethod
    def list_maps(self) -> list[MapInfo]:
        """Every map pinned under tc/globals, entries counted."""

    @abstractmethod
    def command(self, argv: list[str]) -> str:
        """The shell command a person would type to run `argv` (a bpftool command) where this backend does."""

    @abstractmethod
    def btf_types(self, info: MapInfo) -> tuple[dict, int, int]:
        """The map's BTF (`bpftool -j btf dump id N`, parsed by tshoot.core.btf.parse_types) and the ids of its
        key and value types in it. Only asked for maps with a btf_id."""

    @abstractmethod
    def interfaces(self) -> dict[int, str]:
        """The node's network interfaces, {ifindex: name} (for enrichment)."""

    def once(self, key, read):
        """read() the first time `key` is asked on this backend, its answer (or its NotPinned) after that: a
        backend lives for one command, so a map's info and BTF cross the wire once per node per command
        however many lookups a walk or a policy lookup makes."""
        memo = self.__dict__.setdefault("_once", {})
        if key not in memo:
            try:
                memo[key] = read()
            except NotPinned as exc:
                memo[key] = exc
        found = memo[key]
        if isinstance(found, NotPinned):
            raise NotPinned(str(found))
        return found

    def known(self, key) -> bool:
        """Whether `key` was answered already in this command (Backend.once, Backend.remember)."""
        return key in self.__dict__.get("_once", {})

    def remember(self, key, answer) -> None:
        """Keep an answer read ahead (Backend.prefetch) for once(key, …) to give: a NotPinned is kept as such."""
        self.__dict__.setdefault("_once", {})[key] = answer

    def prefetch(self, names=(), lookups=(), searches=()) -> None:
        """Ask ahead what the next calls will ask, where asking together saves round trips (PodBackend: one
        exec for all of it): the info of the maps pinned as `names`, the lookups `lookups` ((pin name, key)),
        and the LPM searches `searches` ((pin name, candidate prefixes): first_entry's question). Answers are
        kept for this command; what could not be read ahead is asked again, and fails, where it is used.
        Here nothing is asked ahead: a local read is a system call."""

    def clock_samples(self) -> tuple[int, int]:
        """(CLOCK_MONOTONIC in ns, jiffies) read on the node now: the clocks conntrack lifetimes count in."""
        raise TshootError(f"{self.kind} backend: the node's clocks cannot be read")

    def program_names(self) -> dict[int, str]:
        """The node's BPF programs, {id: name} (what a prog array's slots hold)."""
        raise TshootError(f"{self.kind} backend: program names are not known")

    def preamble(self) -> list[str]:
        """Commands that come before the bpftool ones in the teaching view (finding the agent pod)."""
        return []
