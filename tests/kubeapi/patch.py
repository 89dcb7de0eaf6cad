"""The four PATCH flavours of the API server, and the field ownership server-side apply relies on.

- JSON merge patch (RFC 7386): maps merge, `null` deletes, lists replace.
- Strategic merge patch (built-in types only): like merge, but lists of objects merge by their key
  (containers by name, ports by containerPort, ...) and `$patch: delete` removes a list item.
- JSON patch (RFC 6902): add, remove, replace, move, copy, test.
- Server-side apply: the applied configuration is merged into the live object; each manager owns the
  leaf fields it applied, a field owned by another manager with a different value is a conflict unless
  force=true, and fields a manager stops applying are removed when nobody else owns them.
  Lists are atomic (owned and replaced whole): simpler than the real server's keyed lists, and the
  same result whenever one manager owns a list, which is how manifests are applied.
"""

from __future__ import annotations

import copy
import datetime

# Merge keys of built-in list fields (the patchMergeKey tags of k8s.io/api) where it is not "name".
MERGE_KEYS = {"volumeMounts": "mountPath", "volumeDevices": "devicePath", "ports": "containerPort",
              "conditions": "type", "ownerReferences": "uid", "addresses": "type", "taints": "key",
              "hostAliases": "ip", "topologySpreadConstraints": "topologyKey"}
# Written by the server, never owned by a manager, never taken from a client's patch.
SERVER_FIELDS = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace"), ("metadata", "uid"),
                 ("metadata", "resourceVersion"), ("metadata", "generation"), ("metadata", "creationTimestamp"),
                 ("metadata", "managedFields"), ("metadata", "deletionTimestamp"), ("metadata", "selfLink")}


class PatchError(ValueError):
    """The patch cannot be applied; the server answers 422 (or 409 for apply conflicts: ConflictError)."""


class ConflictError(PatchError):
    pass


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue  # ordering and retain directives: the result is the same for our purposes
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list) and _mergeable(value, key):
            result[key] = _merge_list(result[key], value, _merge_key(value, key))
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _merge_key(items: list, field: str) -> str:
    return MERGE_KEYS.get(field, "name")


def _mergeable(items: list, field: str) -> bool:
    key = _merge_key(items, field)
    return bool(items) and all(isinstance(i, dict) and key in i for i in items)


def _merge_list(live: list, patch: list, key: str) -> list:
    result = copy.deepcopy(live)
    for item in patch:
        index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(copy.deepcopy(item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def json_patch(target, operations: list):
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "add":
            doc = _put(doc, path, copy.deepcopy(op["value"]), insert=True)
        elif kind == "remove":
            _take(doc, path)
        elif kind == "replace":
            _take(doc, path)
            doc = _put(doc, path, copy.deepcopy(op["value"]), insert=True)
        elif kind in ("move", "copy"):
            value = _take(doc, op["from"]) if kind == "move" else copy.deepcopy(_get(doc, op["from"]))
            doc = _put(doc, path, value, insert=True)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc, parts: list[str]):
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError):
            raise PatchError(f"doc is missing path: /{'/'.join(parts)}") from None
    return node


def _get(doc, path: str):
    parts = _pointer(path)
    if not parts:
        return doc
    node = _parent(doc, parts)
    try:
        return node[int(parts[-1])] if isinstance(node, list) else node[parts[-1]]
    except (KeyError, IndexError, ValueError):
        raise PatchError(f"doc is missing path: {path}") from None


def _take(doc, path: str):
    parts = _pointer(path)
    node = _parent(doc, parts)
    try:
        return node.pop(int(parts[-1])) if isinstance(node, list) else node.pop(parts[-1])
    except (KeyError, IndexError, ValueError):
        raise PatchError(f"doc is missing path: {path}") from None


def _put(doc, path: str, value, insert: bool):
    parts = _pointer(path)
    if not parts:
        return value
    node = _parent(doc, parts)
    last = parts[-1]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if index > len(node):
            raise PatchError(f"add operation does not apply: index {index} out of bounds")
        node.insert(index, value)
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise PatchError(f"doc is missing path: {path}")
    return doc


# --- server-side apply ---------------------------------------------------------------------------

def leaf_paths(obj, prefix: tuple = ()) -> set[tuple]:
    """Paths of the leaves of an object: scalars, lists (atomic) and empty maps."""
    if isinstance(obj, dict) and obj:
        paths = set()
        for key, value in obj.items():
            paths |= leaf_paths(value, prefix + (key,))
        return paths
    return {prefix}


def value_at(obj, path: tuple, missing=object()):
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return missing
        obj = obj[key]
    return obj


def remove_path(obj: dict, path: tuple) -> None:
    """Remove a leaf and the maps it leaves empty."""
    parents = [obj]
    for key in path[:-1]:
        child = parents[-1].get(key)
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 2, -1, -1):
        if parents[depth + 1] == {}:
            parents[depth].pop(path[depth], None)


def fields_v1(paths: set[tuple]) -> dict:
    """Owned leaf paths in the managedFields FieldsV1 notation: {"f:spec": {"f:replicas": {}}}."""
    tree: dict = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def paths_of(fields: dict, prefix: tuple = ()) -> set[tuple]:
    if not fields:
        return {prefix} if prefix else set()
    paths = set()
    for key, child in fields.items():
        if key.startswith("f:"):
            paths |= paths_of(child, prefix + (key[2:],))
    return paths


def _overlaps(a: tuple, b: tuple) -> bool:
    return a[: len(b)] == b or b[: len(a)] == a


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owned(obj: dict, ignore_status: bool, paths: set[tuple]) -> set[tuple]:
    return {p for p in paths if not any(_overlaps(p, s) and len(p) >= len(s) for s in SERVER_FIELDS)
            and not (ignore_status and p[:1] == ("status",))}


def apply(live: dict | None, config: dict, manager: str, force: bool, api_version: str,
          ignore_status: bool) -> dict:
    """The object after `manager` applies `config` to `live` (None: create)."""
    applied = _owned(config, ignore_status, leaf_paths(config))
    entries = copy.deepcopy((live or {}).get("metadata", {}).get("managedFields", []))
    result = copy.deepcopy(live) if live is not None else {}
    mine = next((e for e in entries if e["manager"] == manager and e["operation"] == "Apply"), None)
    previous = paths_of(mine["fieldsV1"]) if mine else set()
    conflicts: dict[str, list[tuple]] = {}
    others = [e for e in entries if e is not mine]
    for entry in others:
        owned = paths_of(entry.get("fieldsV1", {}))
        clashing = {o for o in owned for p in applied if _overlaps(o, p)
                    and value_at(result, o) != value_at(config, o)}
        if clashing and not force:
            conflicts[entry["manager"]] = sorted(clashing)
        elif clashing:
            entry["fieldsV1"] = fields_v1(owned - clashing)
    if conflicts:
        raise ConflictError(_conflict_message(conflicts, api_version))
    still_owned = set().union(*(paths_of(e.get("fieldsV1", {})) for e in others)) if others else set()
    for path in previous - applied:
        if not any(_overlaps(path, o) for o in still_owned | applied):
            remove_path(result, path)
    body = {k: v for k, v in config.items() if k != "status" or not ignore_status}
    result = _merge_applied(result, body)
    entries = [e for e in others if paths_of(e.get("fieldsV1", {}))]
    entries.append({"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": _now(),
                    "fieldsType": "FieldsV1", "fieldsV1": fields_v1(applied)})
    result.setdefault("metadata", {})["managedFields"] = entries
    return result


def _merge_applied(live, config):
    if not isinstance(config, dict) or not isinstance(live, dict):
        return copy.deepcopy(config)
    result = copy.deepcopy(live)
    for key, value in config.items():
        result[key] = _merge_applied(result.get(key), value)
    return result


def _conflict_message(conflicts: dict[str, list[tuple]], api_version: str) -> str:
    total = sum(len(v) for v in conflicts.values())
    lines = [f"Apply failed with {total} conflict{'s' if total > 1 else ''}:"]
    for manager, paths in conflicts.items():
        shown = ["." + ".".join(p) for p in paths]
        if len(shown) == 1:
            lines.append(f'conflict with "{manager}" using {api_version}: {shown[0]}')
        else:
            lines.append(f'conflicts with "{manager}" using {api_version}:\n' + "\n".join(f"- {s}" for s in shown))
    return " ".join(lines)


def record_update(old: dict | None, new: dict, manager: str, api_version: str, ignore_status: bool) -> None:
    """Non-apply writes: the writer owns the fields it changed; other managers lose them."""
    changed = _owned(new, ignore_status, {p for p in leaf_paths(new) if value_at(old or {}, p) != value_at(new, p)})
    entries = copy.deepcopy((old or {}).get("metadata", {}).get("managedFields", []))
    if not changed:
        new.setdefault("metadata", {})["managedFields"] = entries
        if not entries:
            new["metadata"].pop("managedFields")
        return
    kept, mine = [], None
    for entry in entries:
        owned = paths_of(entry.get("fieldsV1", {}))
        if entry["manager"] == manager and entry["operation"] == "Update":
            mine = owned
            continue
        rest = {o for o in owned if not any(_overlaps(o, c) for c in changed)}
        if rest:
            entry["fieldsV1"] = fields_v1(rest)
            kept.append(entry)
    kept.append({"manager": manager, "operation": "Update", "apiVersion": api_version, "time": _now(),
                 "fieldsType": "FieldsV1", "fieldsV1": fields_v1((mine or set()) | changed)})
    new.setdefault("metadata", {})["managedFields"] = kept
