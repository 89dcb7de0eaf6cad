"""Reading Cilium maps on nodes: `tshoot map lookup`, `map dump`, `map list` without the printing.

* lookup: the key built exactly as `tshoot key` builds it, looked up as the datapath looks it up. On an
  LPM trie the kernel answers with the value of the longest prefix covering the key but does not say
  which entry that was; the entry is the longest prefix of the key that is itself an entry, which the
  kernel tells without the map being read (Backend.first_entry). `exact` asks for that very key instead.
  Through an agent, the map's info, the value and that search go in one round trip (read_ahead).
* dump: every entry decoded (tshoot.mapio.bulk), filtered (tshoot.mapio.filter), limited.
* list: every map pinned under tc/globals with its geometry, entries and the layout tshoot reads it with.

Each function works on one backend (one node); tshoot.node.fanout runs one on many nodes at once, each
node's failure kept apart from the others' results.
"""

from __future__ import annotations

from tshoot.maps import progarray
from tshoot.node.backend import (LPM_TRIE, PER_CPU_TYPES, PROG_ARRAY, Backend, Entries, MapInfo, NotPinned, lpm_key,
                                 lpm_prefix)
from tshoot.mapio.bulk import BulkDecoder, LayoutChoice, size_mismatch
from tshoot.mapio.decode import decode_entry
from tshoot.core.errors import FieldError, TshootError, UsageError
from tshoot.mapio.filter import Filter
from tshoot.node.fanout import DEFAULT_PARALLEL, DEFAULT_TIMEOUT
from tshoot.maps import MAPS
from tshoot.maps.base import Absent, CiliumMap
from tshoot.core.version import Range, Version


# --- which map, which layout ---------------------------------------------------------------------
def _pins_newest_first(cmap: CiliumMap) -> list[str]:
    ordered = sorted(cmap.pins, key=lambda p: max(high for _, high in p.versions.intervals), reverse=True)
    return list(dict.fromkeys(p.name for p in ordered))


def _format_pin(cmap: CiliumMap, template: str, params: dict) -> str:
    try:
        return template.format(**params)
    except KeyError as exc:
        raise FieldError(exc.args[0], None, f"{cmap.short} maps are per endpoint: give its id or the pinned name, "
                         f"e.g. {template.format(**{exc.args[0]: 2006})}") from None


def resolve_map(backend: Backend, cmap: CiliumMap, params: dict, version: Version | None,
                pinned: str | None = None) -> MapInfo:
    """The pinned map on that node: `pinned` when the user named it (never renamed: a version only chooses
    the layout), else the name its version uses, or, version unknown, the newest name pinned."""
    if pinned is not None:
        return backend.info(pinned)
    if version is not None:
        try:
            names = [_format_pin(cmap, cmap.pin(version).name, params)]
        except Absent as exc:
            raise TshootError(str(exc)) from None
    else:
        names = [_format_pin(cmap, name, params) for name in _pins_newest_first(cmap)]
    failures = []
    for name in names:
        try:
            return backend.info(name)
        except NotPinned as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    raise TshootError(f"none of {', '.join(names)} is pinned on {backend.node} ({failures[0]})")


def key_version(cmap: CiliumMap, info: MapInfo, version: Version | None) -> Version:
    """The version keys are built for. Unknown, the newest version whose key size and pinned name match the
    map (for a cluster-local key, every layout of one size encodes the same bytes)."""
    if version is not None:
        if cmap.layout_for("key", version).size != info.key_size:
            raise TshootError(size_mismatch(cmap, "key", version, info.key_size))
        return version
    params = cmap.match_pinned(info.name) or {}
    points = {low for versions, _ in [*cmap.keys, *((p.versions, None) for p in cmap.pins)] for low, _ in versions.intervals}
    candidates = []
    for point in points:
        try:
            fits = cmap.layout_for("key", point).size == info.key_size
            if fits and cmap.pin(point).name.format(**params) == info.name:
                candidates.append(point)
        except (UsageError, KeyError):
            continue
    if not candidates:
        raise TshootError(size_mismatch(cmap, "key", None, info.key_size))
    return max(candidates)


def check_value_size(cmap: CiliumMap, info: MapInfo, version: Version | None) -> None:
    sizes = {layout.size for _, layout in cmap.values}
    if version is not None:
        if cmap.layout_for("value", version).size != info.value_size:
            raise TshootError(size_mismatch(cmap, "value", version, info.value_size))
    elif info.value_size not in sizes:
        raise TshootError(size_mismatch(cmap, "value", None, info.value_size))


def map_btf(backend: Backend, info: MapInfo) -> tuple | None:
    """(key, value) BTFStruct (either may be None) of a map that carries BTF: the layout is then chosen by
    the struct the map says it holds, not by a version number. None without BTF, or when it cannot be read."""
    if not info.btf_id:
        return None
    from tshoot.core.btf import describe

    try:
        types, key_id, value_id = backend.btf_types(info)
        return (describe(types, key_id) if key_id else None, describe(types, value_id) if value_id else None)
    except (TshootError, KeyError):
        return None  # decoded by version or size instead; -v says which rule chose


# --- lookups -------------------------------------------------------------------------------------
class NoEntry(TshootError):
    """No entry answers the key (a fact a packet walk reports, not a failure); `commands` show the lookup."""

    def __init__(self, message: str, commands: list[str]):
        super().__init__(message)
        self.commands = commands


class Lookup:
    """One node's answer: the entry (key that matched, value), decoded, and how it was found."""

    def __init__(self, backend: Backend, cmap: CiliumMap, info: MapInfo, version: Version | None,
                 asked: bytes, key: bytes, value: bytes, commands: list[str], how: str):
        self.node, self.cmap, self.info, self.version = backend.node, cmap, info, version
        self.asked, self.key, self.value, self.commands, self.how = asked, key, value, commands, how
        self.obj, self.dkey, self.dvalue = decode_entry(cmap, key, value, version, *(map_btf(backend, info) or ()))


def describe_key(fields: dict) -> str:
    """The fields that say something (an identity always: 0 is "any", the policy wildcard)."""
    return " ".join(f"{k}={v}" for k, v in fields.items()
                    if v not in (None, "", []) and (v != 0 or k == "identity")) or "that key"


def lookup(backend: Backend, cmap: CiliumMap, params: dict, key: dict,
           version: Version | None = None, exact: bool = False, pinned: str | None = None) -> Lookup:
    """`tshoot map lookup`: the key from the map's key fields (`key`: keyword arguments of CiliumMap.key, as
    `tshoot key` builds it), asked as the datapath asks it (a policy map: that identity, then any;
    CiliumMap.datapath_keys), or exactly. `pinned`: the map the user named, looked up under that name."""
    version = version or backend.version
    if version is not None:  # the keys are known before the map's info: both asked in one round trip
        try:
            fields = cmap.key(version, **key)
        except TshootError:
            pass  # said by the lookup below
        else:
            read_ahead(backend, cmap, params, version, [fields] if exact else cmap.datapath_keys(fields, version),
                       exact, pinned)
    info = resolve_map(backend, cmap, params, version, pinned)
    kversion = key_version(cmap, info, version)
    fields = cmap.key(kversion, **key)
    return datapath_lookup(backend, cmap, [fields] if exact else cmap.datapath_keys(fields, kversion), version,
                           params, exact, info)


LPM_FIRST_ROUND = 33  # prefixes asked with the value: all of an IPv4 address (and the 32 static bits of an
#                       ipcache key, down to the world's /0), the 33 longest of a longer key; the rest if needed


def read_ahead(backend: Backend, cmap: CiliumMap, params: dict | None, version: Version | None, keys: list[dict],
               exact: bool = False, pinned: str | None = None) -> None:
    """Ask the node at once (Backend.prefetch: one exec through an agent) what looking up `keys` (key fields,
    in the order the datapath asks them) will ask: the map's info, each key's value, and on an LPM trie the
    search for the prefix that answered (lookup_bytes). Keys are built for `version`, which names the map;
    without one nothing is asked ahead (the map's key size chooses the layout). What was asked ahead and is
    not needed costs nothing more than its bytes; what could not be is asked where it is used."""
    backend.prefetch(**asks(cmap, params, version, keys, exact, pinned))


def asks(cmap: CiliumMap, params: dict | None, version: Version | None, keys: list[dict], exact: bool = False,
         pinned: str | None = None) -> dict:
    """read_ahead's questions as Backend.prefetch's arguments (several maps' are asked in one prefetch)."""
    none: dict = {"names": [], "lookups": [], "searches": []}
    if version is None:
        return none
    try:
        pin = cmap.pin(version)
        name = pinned or _format_pin(cmap, pin.name, params or {})
        encoded = [cmap.encode("key", fields, version) for fields in keys]
    except (TshootError, KeyError, ValueError):
        return none  # said where the lookup is made
    searches = []
    if pin.map_type == LPM_TRIE:
        searches = [(name, _candidates(key, 1 if exact else LPM_FIRST_ROUND)) for key in encoded]
    return {"names": [name], "lookups": [(name, key) for key in encoded], "searches": searches}


def _candidates(key: bytes, count: int | None = None) -> list[bytes]:
    """The LPM trie keys of every prefix of `key` (the `count` longest), longest first."""
    longest = lpm_prefix(key)[0]
    return [lpm_key(key, length) for length in range(longest, -1 if count is None else max(longest - count, -1), -1)]


def datapath_lookup(backend: Backend, cmap: CiliumMap, keys: list[dict], version: Version | None, params: dict,
                    exact: bool = False, info: MapInfo | None = None) -> Lookup:
    """The first of `keys` (CiliumMap.datapath_keys) that an entry answers; NoEntry when none does."""
    if len(keys) > 1 or info is None:
        read_ahead(backend, cmap, params, version, keys, exact)
    info = info or resolve_map(backend, cmap, params or {}, version)
    missed: list[NoEntry] = []
    for fields in keys:
        try:
            found = lookup_fields(backend, cmap, fields, version, params, exact, info)
        except NoEntry as exc:
            missed.append(exc)
            continue
        if missed:  # the lookups that found nothing come first, as the datapath made them
            found.commands = _merged([*(_missed(m.commands) for m in missed), found.commands])
            found.how += f", after no entry for {'; '.join(describe_key(f) for f in keys[:len(missed)])}"
        return found
    if len(missed) == 1:
        raise missed[0]
    raise NoEntry(f"no entry answers any key the datapath asks ({'; then '.join(describe_key(f) for f in keys)}) "
                  f"in {info.name} on {backend.node}", _merged([m.commands for m in missed]))


MISSED = "   # no entry (bpftool says Not found, exit 254): the datapath asks the next key"


def _missed(commands: list[str]) -> list[str]:
    """A lookup that found nothing, said so where it is shown: pasted, it fails, and that is the answer."""
    return [*commands[:-1], commands[-1] + MISSED]


def _merged(command_lists: list[list[str]]) -> list[str]:
    out: list[str] = []
    for commands in command_lists:
        out += [c for c in commands if c not in out]
    return out


def lookup_fields(backend: Backend, cmap: CiliumMap, fields: dict, version: Version | None = None,
                  params: dict | None = None, exact: bool = False, info: MapInfo | None = None) -> Lookup:
    """A lookup by key fields as `-o json` shows them ({"prefix": "10.0.1.110/32", "family": "ipv4",
    "cluster_id": 0} for the ipcache): what a packet walk asks at each hop."""
    version = version or backend.version
    if info is None:
        read_ahead(backend, cmap, params, version, [fields], exact)
    info = info or resolve_map(backend, cmap, params or {}, version)
    kversion = key_version(cmap, info, version)
    check_value_size(cmap, info, version)
    key = cmap.encode("key", fields, kversion)
    return lookup_bytes(backend, cmap, info, version, key, exact, describe_key(fields))


def lookup_bytes(backend: Backend, cmap: CiliumMap, info: MapInfo, version: Version | None, key: bytes,
                 exact: bool = False, what: str | None = None) -> Lookup:
    """A lookup of key bytes, as the datapath does it: the longest prefix covering the key on an LPM trie
    (exact: that very prefix), the key itself on a hash map. TshootError when nothing answers."""
    what = f"{what or key.hex(' ')} in {info.name} on {backend.node}"
    lookup_cmd = backend.command(["bpftool", "map", "lookup", "pinned", info.path, "key", "hex", *key.hex(" ").split()])
    commands = backend.preamble()
    if info.map_type != LPM_TRIE:
        commands.append(lookup_cmd)
        value = backend.lookup(info, key)
        if value is None:
            raise NoEntry(f"no entry for {what}", commands)
        if info.map_type in PER_CPU_TYPES:
            value = cmap.fold_cpus(value)
        return Lookup(backend, cmap, info, version, key, key, value, commands, f"exact key ({info.map_type} map)")
    if exact:
        # Whether this very prefix is an entry is asked of the kernel with get_next_key (first_entry); shown is
        # the lookup, which answers with the entry's own value when it is one (`bpftool map getnext` would fail
        # as shown on the map's last key: it has no next key).
        backend.prefetch(lookups=[(info.name, key)], searches=[(info.name, [key])])
        if backend.first_entry(info, [key]) is None:
            commands.append(lookup_cmd)
            raise NoEntry(f"no entry for exactly {what} (drop --exact for the longest prefix covering it)", commands)
        commands.append(lookup_cmd + "   # this very prefix is an entry: its value")
        value = backend.lookup(info, key)  # the longest prefix covering a prefix that is an entry is itself
        if value is None:
            raise TshootError(f"no entry for exactly {what} any more (the map changed while it was read)")
        return Lookup(backend, cmap, info, version, key, key, value, commands, "exact prefix")
    commands.append(lookup_cmd + "   # the datapath's lookup: the value of the longest prefix covering the key")
    # Which entry answered: the longest prefix of the key that is itself an entry, asked of the kernel, longest
    # first (what the trie's own walk finds; kernel/bpf/lpm_trie.c trie_lookup_elem). Exact even where nested
    # prefixes hold equal values, and without reading the map. Whether the key's own prefix is one (a host's
    # /32: the usual answer) and the other usual ones (down to the world's /0 on an IPv4 key) are asked with
    # the value, in the same round trip (read_ahead, Backend.prefetch).
    candidates = _candidates(key)
    backend.prefetch(lookups=[(info.name, key)], searches=[(info.name, candidates[:LPM_FIRST_ROUND])])
    value = backend.lookup(info, key)
    if value is None:
        raise NoEntry(f"no entry covers {what}", commands)
    found = backend.first_entry(info, candidates)
    if found is None:  # removed between the two reads
        raise TshootError(f"no entry covers {what} any more (the map changed while it was read)")
    if found:  # a shorter prefix answered: its own lookup shows the entry (its key is the prefix)
        commands.append(backend.command(["bpftool", "map", "lookup", "pinned", info.path, "key", "hex",
                                         *candidates[found].hex(" ").split()])
                        + "   # the entry that answered: the longest prefix of the key that is an entry")
    return Lookup(backend, cmap, info, version, key, candidates[found], value, commands, "longest prefix match")



# --- dumps ---------------------------------------------------------------------------------------
class Dump:
    """One node's entries, decoded on demand: `keys`/`values` (parallel lists of fields, filtered and limited),
    or `rows(start, stop)` for a slice of the raw entries (a dump's JSON is rendered slice by slice, on
    every CPU: tshoot.mapio.forkmap)."""

    def __init__(self, backend: Backend, cmap: CiliumMap, info: MapInfo, version: Version | None, entries: Entries,
                 filters: Filter | None, limit: int | None, commands: list[str]):
        self.node, self.cmap, self.info, self.version = backend.node, cmap, info, version
        self.entries, self.filters, self.limit, self.commands = entries, filters, limit, commands
        self.total = len(entries)
        self.decoder = BulkDecoder(cmap, version, info.key_size, entries.value_size, map_btf(backend, info))
        self._decoded: tuple[list[dict], list[dict]] | None = None

    def rows(self, start: int = 0, stop: int | None = None) -> tuple[list[dict], list[dict]]:
        """Key fields and value fields of the entries start..stop that pass the filters."""
        part = self.entries.slice(start, self.total if stop is None else stop)
        keys = self.decoder.keys(part.keys)
        values = self.decoder.value_list(part.values, keys)  # read in the role each key gives its value
        if self.filters and keys:
            keep, node = self.filters.bind(keys[0], self._value_sample(keys, values)), self.node
            pairs = [(k, v) for k, v in zip(keys, values) if keep(k, v, node)]
            keys, values = [k for k, _ in pairs], [v for _, v in pairs]
        return keys, values

    def _value_sample(self, keys: list[dict], values: list[dict]) -> dict:
        """Value fields to bind filters to: the first entry's, and in maps with roles those of the first entry
        of each role (a backend slot's backend_id is a field even when the dump starts with a frontend)."""
        if not self.decoder.has_roles:
            return values[0]
        sample: dict = {}
        roles = set()
        for k, v in zip(keys, values):
            role = self.cmap.value_role(k)
            if role not in roles:
                roles.add(role)
                sample = {**v, **sample}
        return sample

    def _all(self) -> tuple[list[dict], list[dict]]:
        if self._decoded is None:
            if self.limit is not None and not self.filters:
                self._decoded = self.rows(0, min(self.limit, self.total))  # decode only what is shown
            else:
                keys, values = self.rows()
                self._decoded = (keys[: self.limit], values[: self.limit]) if self.limit is not None else (keys, values)
        return self._decoded

    def decode(self) -> "Dump":
        """Decode now (else on first use of keys/values)."""
        self._all()
        return self

    @property
    def keys(self) -> list[dict]:
        return self._all()[0]

    @property
    def values(self) -> list[dict]:
        return self._all()[1]

    @property
    def reasons(self) -> list[str]:
        return self.decoder.reasons()


def dump(backend: Backend, cmap: CiliumMap, params: dict, version: Version | None = None,
         filters: Filter | None = None, limit: int | None = None, pinned: str | None = None) -> Dump:
    """Every entry of the map on that node (read now, decoded when asked: Dump.keys/values/rows); `pinned`:
    the map the user named, read under that name."""
    version = version or backend.version
    info = resolve_map(backend, cmap, params, version, pinned)
    commands = [*backend.preamble(), backend.command(["bpftool", "-j", "map", "dump", "pinned", info.path])]
    return Dump(backend, cmap, info, version, folded(cmap, info, backend.dump(info)), filters, limit, commands)


def folded(cmap: CiliumMap, info: MapInfo, entries: Entries) -> Entries:
    """A per-CPU map's entries with each value summed over CPUs (CiliumMap.fold_cpus); others as they are."""
    if info.map_type not in PER_CPU_TYPES:
        return entries
    values = b"".join(cmap.fold_cpus(value) for _, value in entries.pairs())
    return Entries(entries.key_size, info.value_size, entries.keys, values)


class ProgArrayDump:
    """One node's program array: every filled slot with the id and name of the program in it."""

    def __init__(self, backend: Backend, info: MapInfo, commands: list[str]):
        self.node, self.info, self.commands = backend.node, info, commands
        entries = backend.dump(info)
        filled = progarray.slots(entries.keys, entries.values)
        names = backend.program_names() if filled else {}
        self.slots = [{"slot": slot, "program_id": prog_id, "program": names.get(prog_id)} for slot, prog_id in filled]
        self.total = len(self.slots)


def dump_prog_array(backend: Backend, name: str) -> ProgArrayDump:
    """`tshoot map dump` of a program array (tshoot.maps.progarray): slot -> program (id, name)."""
    info = backend.info(name)
    if info.map_type != PROG_ARRAY:
        raise TshootError(f"{name} on {backend.node} is a {info.map_type} map, not a program array")
    commands = [*backend.preamble(), backend.command(["bpftool", "map", "dump", "pinned", info.path]),
                backend.command(["bpftool", "prog", "show"]) + "   # the programs' names"]
    return ProgArrayDump(backend, info, commands)


# --- lists ---------------------------------------------------------------------------------------
def map_of(name: str) -> tuple[CiliumMap, dict] | None:
    for cmap in MAPS:
        params = cmap.match_pinned(name)
        if params is not None:
            return cmap, params
    return None


def layout_of(info: MapInfo, version: Version | None, btf: tuple | None = None) -> dict | None:
    """Which structs tshoot reads a pinned map with, and why (the rules of tshoot.mapio.bulk.LayoutChoice: the
    map's BTF, else the version, else the sizes); None for a map tshoot does not know."""
    if info.map_type == PROG_ARRAY and progarray.is_prog_array(info.name):
        return {"key": progarray.slot_meaning(info.name), "value": "program", "by": "a program array: ENTRIES are "
                "its filled slots", "problem": None}
    found = map_of(info.name)
    if found is None:
        return None
    cmap, _ = found
    out: dict = {"key": None, "value": None, "by": None, "problem": None}
    for which, size, which_btf in (("key", info.key_size, btf[0] if btf else None),
                                   ("value", info.value_size, btf[1] if btf else None)):
        try:
            choice = LayoutChoice(cmap, which, size, version, which_btf)
        except TshootError as exc:
            out["problem"] = str(exc)
            continue
        if choice.fixed is not None:
            out[which], out["by"] = choice.fixed.c_name, next(iter(choice.reasons.values()))
        else:
            out[which] = choice.fitting[0][1].c_name
            out["by"] = f"{size}-byte {which}s: Cilium {merged_label([v for v, _ in choice.fitting])}"
    return out


def merged_label(ranges: list[Range]) -> str:
    """Version ranges as one label, touching intervals joined: '1.9.0–1.17.x'."""
    merged: list[list] = []
    for low, high in sorted(interval for r in ranges for interval in r.intervals):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return Range(" ".join(f"{'.'.join(map(str, low))}-{'.'.join(map(str, high))}" for low, high in merged)).label()


class Listing:
    def __init__(self, backend: Backend, maps: list[MapInfo], version: Version | None, commands: list[str]):
        self.node, self.version, self.commands = backend.node, version, commands
        self.maps = [(info, layout_of(info, version, map_btf(backend, info) if map_of(info.name) else None))
                     for info in maps]


def list_maps(backend: Backend, version: Version | None, cilium_only: bool = True) -> Listing:
    version = version or backend.version
    commands = [*backend.preamble(), backend.command(["bpftool", "-j", "-f", "map", "show"])]
    maps = [info for info in backend.list_maps() if not cilium_only or info.name.startswith("cilium_")]
    return Listing(backend, maps, version, commands)


# --- many nodes ---------------------------------------------------------------------------------
def ipcache_entries(api, address: str, parallel: int = DEFAULT_PARALLEL, timeout: float = DEFAULT_TIMEOUT,
                    on_nodes=None, on_answer=None) -> list[dict]:
    """Every node's ipcache answer for an address (the datapath's longest-prefix lookup through each agent):
    [{"node", "prefix", "identity", "tunnel_endpoint"}] or {"node", "error"} for a node that could not say.
    This is the ipcache side of `tshoot whois --ipcache` (tshoot.cluster.objects.IpcacheLookup).
    on_nodes(count) once the nodes are listed, on_answer(result) as each answers (tshoot.node.fanout)."""
    from tshoot.core.addr import IPV6, parse_ip, show_ip
    from tshoot.maps import ipcache
    from tshoot.node.agent import pod_backends
    from tshoot.node.fanout import NodeFailure, fan_out

    family, raw = parse_ip(address)
    prefix = f"{show_ip(raw)}/{128 if family == IPV6 else 32}"

    def one(backend: Backend) -> dict:
        try:
            found = lookup_fields(backend, ipcache.MAP, {"prefix": prefix})
        except NoEntry:
            return {"node": backend.node, "prefix": None, "identity": None, "tunnel_endpoint": None}
        value = found.obj["value"]
        return {"node": backend.node, "prefix": found.obj["key"]["prefix"], "identity": value["identity"],
                "tunnel_endpoint": value["tunnel_endpoint"]}

    backends = pod_backends(api, timeout=timeout)
    if on_nodes is not None:
        on_nodes(len(backends))
    return [{"node": r.node, "error": r.message} if isinstance(r, NodeFailure) else r
            for r in fan_out(backends, one, parallel, on_answer)]
