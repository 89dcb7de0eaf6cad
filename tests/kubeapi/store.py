"""Object storage with the API server's semantics: resource versions, uids, generations, field
ownership, selectors, paginated lists with real continue tokens, cascading deletes and watch events.

Objects are plain dicts, stored and returned as a real cluster stores and returns them. Every public
method copies on the way in and out, so tests and the HTTP layer never share mutable state.
"""

from __future__ import annotations

import base64
import binascii
import collections
import copy
import datetime
import json
import re
import threading
import uuid

from . import patch as patches
from .resources import BUILTIN, CRDS, GENERATION_TRACKED, Resource, from_crd
from .selectors import FieldSelector, LabelSelector, SelectorError, allowed_fields

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
EVENT_HISTORY = 20000  # watch events kept for resourceVersion-based resumption (etcd compaction stand-in)


class ApiError(Exception):
    """A failed request, carried to the client as a metav1.Status with this code and reason."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found',
                    _details(resource, name))


def _details(resource: Resource, name: str | None) -> dict:
    details = {"kind": resource.plural}
    if name:
        details["name"] = name
    if resource.group:
        details["group"] = resource.group
    return details


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.resources: dict[tuple[str, str, str], Resource] = {}
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict]] = collections.defaultdict(dict)
        self.events: collections.deque = collections.deque(maxlen=EVENT_HISTORY)
        self.revision = 1
        for resource in BUILTIN:
            self.register(resource)

    # --- resource types ---------------------------------------------------------------------------

    def register(self, resource: Resource) -> None:
        self.resources[(resource.group, resource.version, resource.plural)] = resource

    def resource(self, group: str, version: str, plural: str) -> Resource | None:
        return self.resources.get((group, version, plural))

    def find_kind(self, api_version: str, kind: str) -> Resource:
        group, _, version = api_version.rpartition("/")
        for res in self.resources.values():
            if res.group == group and res.version == version and res.kind == kind:
                return res
        raise ApiError(404, "NotFound", f"the server could not find the requested resource ({kind} {api_version})")

    def _sync_crd(self, crd: dict, deleted: bool) -> None:
        for res in from_crd(crd):
            if deleted:
                self.resources.pop((res.group, res.version, res.plural), None)
                self.objects.pop(res.storage_key, None)
            else:
                self.register(res)

    # --- reads ------------------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str | None, name: str) -> dict:
        with self.lock:
            obj = self.objects[resource.storage_key].get(self._key(resource, namespace, name))
            if obj is None:
                raise not_found(resource, name)
            return self._out(resource, obj)

    def list(self, resource: Resource, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None, continue_token: str | None = None) -> dict:
        labels, fields = self._selectors(resource, label_selector, field_selector)
        with self.lock:
            bucket = self.objects[resource.storage_key]
            # etcd's key order: /registry/<resource>/<namespace>/<name>
            keys = sorted((k for k in bucket if not (resource.namespaced and namespace) or k[0] == namespace),
                          key="/".join)
            start = self._decode_continue(continue_token) if continue_token else None
            if start is not None:
                keys = [k for k in keys if "/".join(k) > start]
            items, last_key = [], None
            for index, key in enumerate(keys):
                obj = bucket[key]
                if labels.matches(obj.get("metadata", {}).get("labels")) and fields.matches(obj):
                    items.append(self._out(resource, obj))
                    last_key = key
                    if limit and len(items) == limit:
                        break
            metadata = {"resourceVersion": str(self.revision)}
            if limit and last_key is not None and keys and keys[-1] != last_key and len(items) == limit:
                metadata["continue"] = self._encode_continue("/".join(last_key))
                if not labels and not fields:
                    metadata["remainingItemCount"] = len(keys) - keys.index(last_key) - 1
            return {"kind": f"{resource.kind}List", "apiVersion": resource.group_version, "metadata": metadata,
                    "items": items}

    def _selectors(self, resource: Resource, label_selector, field_selector):
        try:
            return (LabelSelector(label_selector),
                    FieldSelector(field_selector, resource.plural, allowed_fields(resource.plural)))
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None

    def _encode_continue(self, start: str) -> str:
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": self.revision, "start": start + "\x00"}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def _decode_continue(token: str) -> str:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if raw.get("v") != "meta.k8s.io/v1":
                raise ValueError
            return raw["start"].rstrip("\x00")
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise ApiError(400, "BadRequest", f"continue key is not valid: {token!r}") from None

    # --- writes -----------------------------------------------------------------------------------

    def create(self, resource: Resource, obj: dict, namespace: str | None = None, manager: str | None = None,
               dry_run: bool = False, fill: bool = True, from_api: bool = True) -> dict:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        namespace = self._namespace_for(resource, obj, namespace)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        self._validate(resource, obj)
        with self.lock:
            key = self._key(resource, namespace, meta["name"])
            if key in self.objects[resource.storage_key]:
                raise ApiError(409, "AlreadyExists", f'{resource.qualified} "{meta["name"]}" already exists',
                               _details(resource, meta["name"]))
            if resource.namespaced and from_api and ("", namespace) not in self.objects[("", "namespaces")]:
                raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                               {"name": namespace, "kind": "namespaces"})
            if from_api and "status" in resource.subresources:
                obj.pop("status", None)  # status is written through /status, by controllers
                if resource.plural == "pods":
                    obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
            if fill:
                meta["uid"] = meta.get("uid") or str(uuid.uuid4())
                meta["creationTimestamp"] = meta.get("creationTimestamp") or now()
                if resource.custom or resource.plural in GENERATION_TRACKED:
                    meta["generation"] = meta.get("generation", 1)
            if manager:
                patches.record_update(None, obj, manager, resource.group_version, "status" in resource.subresources)
            if dry_run:
                return self._out(resource, obj)
            return self._commit(resource, key, obj, "ADDED", fill)

    def replace(self, resource: Resource, namespace: str | None, name: str, obj: dict, manager: str | None = None,
                dry_run: bool = False, subresource: str | None = None) -> dict:
        obj = copy.deepcopy(obj)
        with self.lock:
            live = self._live(resource, namespace, name)
            wanted = obj.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != live["metadata"].get("resourceVersion"):
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource.qualified} "{name}": the '
                               "object has been modified; please apply your changes to the latest version and try again",
                               _details(resource, name))
            if obj.get("metadata", {}).get("name", name) != name:
                raise ApiError(400, "BadRequest", f"the name of the object ({obj['metadata']['name']}) does not match "
                               f"the name on the URL ({name})")
            new = self._merge_scope(resource, live, obj, subresource)
            return self._update(resource, namespace, name, live, new, manager, dry_run)

    def patch(self, resource: Resource, namespace: str | None, name: str, patch_type: str, body,
              manager: str | None = None, force: bool = False, dry_run: bool = False,
              subresource: str | None = None) -> tuple[dict, bool]:
        """(object, created): apply creates what does not exist, the other patch types need an object."""
        with self.lock:
            key = self._key(resource, namespace, name)
            live = self.objects[resource.storage_key].get(key)
            if patch_type == "apply":
                return self._apply(resource, namespace, name, live, body, manager, force, dry_run, subresource)
            if live is None:
                raise not_found(resource, name)
            live = copy.deepcopy(live)
            try:
                if patch_type == "merge":
                    patched = patches.merge_patch(live, body)
                elif patch_type == "strategic":
                    patched = patches.strategic_merge_patch(live, body)
                else:
                    patched = patches.json_patch(live, body)
            except (patches.PatchError, KeyError, TypeError) as exc:
                raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {exc}")
            new = self._merge_scope(resource, live, patched, subresource)
            return self._update(resource, namespace, name, live, new, manager, dry_run), False

    def _apply(self, resource, namespace, name, live, body, manager, force, dry_run, subresource):
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "error decoding YAML: the applied configuration is not an object")
        if not manager:
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                           "is required for apply patch")
        if body.get("apiVersion") != resource.group_version or body.get("kind") != resource.kind:
            raise ApiError(400, "BadRequest", f"the API version in the data ({body.get('apiVersion')}) and kind "
                           f"({body.get('kind')}) do not match the expected {resource.group_version} {resource.kind}")
        if body.get("metadata", {}).get("name") != name:
            raise ApiError(400, "BadRequest", f"the name of the object ({body.get('metadata', {}).get('name')}) does "
                           f"not match the name on the URL ({name})")
        ignore_status = subresource != "status" and "status" in resource.subresources
        try:
            result = patches.apply(copy.deepcopy(live) if live else None, body, manager, force,
                                   resource.group_version, ignore_status)
        except patches.ConflictError as exc:
            raise ApiError(409, "Conflict", str(exc), _details(resource, name)) from None
        if live is None:
            managed = result["metadata"].pop("managedFields")
            created = self.create(resource, result, namespace, dry_run=dry_run)
            if not dry_run:
                return self._set_managed(resource, namespace, name, managed), True
            created["metadata"]["managedFields"] = managed
            return created, True
        live = copy.deepcopy(live)
        new = self._merge_scope(resource, live, result, subresource)
        new["metadata"]["managedFields"] = result["metadata"]["managedFields"]
        return self._update(resource, namespace, name, live, new, None, dry_run), False

    def _set_managed(self, resource, namespace, name, managed) -> dict:
        obj = self.objects[resource.storage_key][self._key(resource, namespace, name)]
        obj["metadata"]["managedFields"] = managed
        return self._out(resource, obj)

    def _merge_scope(self, resource: Resource, live: dict, new: dict, subresource: str | None) -> dict:
        """A write to /status changes only status; a write to the object keeps status where /status owns it."""
        if subresource == "status":
            merged = copy.deepcopy(live)
            merged["status"] = copy.deepcopy(new.get("status", {}))
            return merged
        if "status" in resource.subresources:
            new = copy.deepcopy(new)
            if "status" in live:
                new["status"] = copy.deepcopy(live["status"])
            else:
                new.pop("status", None)
        return new

    def _update(self, resource, namespace, name, live, new, manager, dry_run) -> dict:
        meta = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "generation", "name", "namespace"):
            if field in live.get("metadata", {}):
                meta[field] = live["metadata"][field]
        meta.pop("resourceVersion", None)
        if manager:
            patches.record_update(live, new, manager, resource.group_version, "status" in resource.subresources)
        self._validate(resource, new)
        unchanged = _strip(new) == _strip(live)
        if unchanged or dry_run:
            if unchanged:
                meta["resourceVersion"] = live["metadata"].get("resourceVersion")
                meta["managedFields"] = live["metadata"].get("managedFields", [])
                if not meta["managedFields"]:
                    meta.pop("managedFields")
            return self._out(resource, new)
        if "generation" in meta and _spec_of(new) != _spec_of(live):
            meta["generation"] = live["metadata"]["generation"] + 1
        return self._commit(resource, self._key(resource, namespace, name), new, "MODIFIED")

    def delete(self, resource: Resource, namespace: str | None, name: str, dry_run: bool = False,
               propagation: str | None = None, preconditions: dict | None = None) -> dict:
        with self.lock:
            live = self._live(resource, namespace, name)
            for field, value in (preconditions or {}).items():
                if value and live["metadata"].get(field) != value:
                    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource.qualified} "{name}": '
                                   f"Precondition failed: {field.upper() if field == 'uid' else field}: {value}, "
                                   f"ObjectMeta.{field}: {live['metadata'].get(field)}", _details(resource, name))
            if dry_run:
                return self._out(resource, live)
            key = self._key(resource, namespace, name)
            obj = self.objects[resource.storage_key].pop(key)
            self.revision += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.revision)
            self._event("DELETED", resource, obj)
            if resource.storage_key == CRDS:
                self._sync_crd(obj, deleted=True)
            if propagation != "Orphan":
                self._collect_dependents(obj["metadata"].get("uid"))
            return self._out(resource, obj)

    def delete_collection(self, resource: Resource, namespace: str | None, label_selector: str | None,
                          field_selector: str | None, dry_run: bool = False) -> dict:
        with self.lock:
            listed = self.list(resource, namespace, label_selector, field_selector)
            deleted = [self.delete(resource, item["metadata"].get("namespace"), item["metadata"]["name"], dry_run)
                       for item in listed["items"]]
            return {**listed, "items": deleted, "metadata": {"resourceVersion": str(self.revision)}}

    def _collect_dependents(self, uid: str | None) -> None:
        """The garbage collector's background propagation, done at once: dependents whose every owner is gone."""
        if not uid:
            return
        for (group, plural), bucket in list(self.objects.items()):
            for key, obj in list(bucket.items()):
                owners = obj.get("metadata", {}).get("ownerReferences", [])
                if owners and any(o.get("uid") == uid for o in owners) and not any(
                        self._uid_exists(o.get("uid")) for o in owners if o.get("uid") != uid):
                    resource = next(r for r in self.resources.values() if r.storage_key == (group, plural))
                    self.delete(resource, key[0] or None, key[1])

    def _uid_exists(self, uid: str | None) -> bool:
        return any(obj.get("metadata", {}).get("uid") == uid for bucket in self.objects.values()
                   for obj in bucket.values())

    # --- watch ------------------------------------------------------------------------------------

    def watch_events(self, resource: Resource, since: int):
        """Events of this resource type after revision `since`, or None when they were compacted away."""
        with self.lock:
            if self.events and since < self.events[0][0] - 1:
                return None
            return [(rv, kind, obj) for rv, kind, key, obj in self.events if rv > since and key == resource.storage_key]

    # --- helpers ----------------------------------------------------------------------------------

    def _commit(self, resource: Resource, key, obj: dict, event: str, fill: bool = True) -> dict:
        self.revision += 1
        if fill:
            obj["metadata"]["resourceVersion"] = str(self.revision)
        obj.pop("apiVersion", None)
        obj.pop("kind", None)
        self.objects[resource.storage_key][key] = obj
        self._event(event, resource, obj)
        if resource.storage_key == CRDS:
            self._sync_crd(obj, deleted=False)
        return self._out(resource, obj)

    def _event(self, kind: str, resource: Resource, obj: dict) -> None:
        self.events.append((self.revision, kind, resource.storage_key, copy.deepcopy(obj)))
        self.changed.notify_all()

    def _out(self, resource: Resource, obj: dict) -> dict:
        """Objects go out with apiVersion and kind first, as the API serializes them."""
        body = copy.deepcopy(obj)
        body.pop("apiVersion", None)
        body.pop("kind", None)
        return {"apiVersion": resource.group_version, "kind": resource.kind, **body}

    def _live(self, resource: Resource, namespace: str | None, name: str) -> dict:
        obj = self.objects[resource.storage_key].get(self._key(resource, namespace, name))
        if obj is None:
            raise not_found(resource, name)
        return copy.deepcopy(obj)

    @staticmethod
    def _key(resource: Resource, namespace: str | None, name: str) -> tuple[str, str]:
        return (namespace or "default") if resource.namespaced else "", name

    @staticmethod
    def _namespace_for(resource: Resource, obj: dict, namespace: str | None) -> str | None:
        meta = obj["metadata"]
        if not resource.namespaced:
            meta.pop("namespace", None)
            return None
        if namespace and meta.get("namespace") and meta["namespace"] != namespace:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                           "sent on the request")
        meta["namespace"] = namespace or meta.get("namespace") or "default"
        return meta["namespace"]

    @staticmethod
    def _validate(resource: Resource, obj: dict) -> None:
        name = obj.get("metadata", {}).get("name")
        if not name:
            raise ApiError(422, "Invalid", f'{resource.kind} "" is invalid: metadata.name: Required value: name or '
                           "generateName is required",
                           {"kind": resource.kind, "causes": [{"reason": "FieldValueRequired", "field": "metadata.name",
                                                               "message": "Required value: name or generateName is required"}]})
        if len(name) > 253 or not _NAME.match(name):
            message = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                       "and must start and end with an alphanumeric character")
            raise ApiError(422, "Invalid", f'{resource.kind} "{name}" is invalid: metadata.name: Invalid value: '
                           f'"{name}": {message}',
                           {"name": name, "kind": resource.kind,
                            "causes": [{"reason": "FieldValueInvalid", "field": "metadata.name",
                                        "message": f'Invalid value: "{name}": {message}'}]})
        for field in ("apiVersion", "kind"):
            expected = resource.group_version if field == "apiVersion" else resource.kind
            if obj.get(field) not in (None, expected):
                raise ApiError(400, "BadRequest", f"the {'API version' if field == 'apiVersion' else 'kind'} in the "
                               f"data ({obj[field]}) does not match the expected {field} ({expected})")


def _strip(obj: dict) -> dict:
    body = copy.deepcopy(obj)
    for field in ("resourceVersion", "managedFields"):
        body.get("metadata", {}).pop(field, None)
    body.pop("apiVersion", None)
    body.pop("kind", None)
    return body


def _spec_of(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
