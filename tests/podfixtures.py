"""Pods of the lab's Cilium agent as the API server returns them at each step of their start: spec from
the lab's own DaemonSet template, status as the kubelet writes it (conditions, init and container
statuses with their waiting/running/terminated states, image IDs once the image is on the node)."""

from __future__ import annotations

import copy

from lab.manifests import Target, documents, render_cilium
from lab.releases import release

NAMESPACE = "cilium"
IMAGE_ID = ("quay.io/cilium/cilium@sha256:2eb67991eaa9368ba199c2fac2c573cb0ffdeb79184533344f42fc9a7ff6af3c")
T0 = "2026-08-02T19:50:00Z"

# The last words of an agent that cannot reach the API server (Cilium's kind troubleshooting page).
API_FATAL = ('level=info msg="Establishing connection to apiserver" host="https://10.96.0.1:443" subsys=k8s\n'
             'level=error msg="Unable to contact k8s api-server" error="Get https://10.96.0.1:443/api/v1/namespaces/'
             'kube-system: dial tcp 10.96.0.1:443: connect: no route to host" subsys=k8s\n'
             'level=fatal msg="Unable to initialize Kubernetes subsystem" error="unable to create k8s client"\n')


def _objects():
    return documents(render_cilium(Target("k8s-guide", release())))


def agent_template() -> dict:
    return next(o for o in _objects() if o["kind"] == "DaemonSet")


def operator_template() -> dict:
    return next(o for o in _objects() if o["kind"] == "Deployment")


def _condition(kind: str, status: bool) -> dict:
    return {"type": kind, "status": "True" if status else "False", "lastProbeTime": None,
            "lastTransitionTime": T0}


def _waiting(name: str, image: str, reason: str, message: str | None = None, restarts: int = 0,
             last: dict | None = None) -> dict:
    waiting = {"reason": reason, **({"message": message} if message else {})}
    return {"name": name, "image": image, "imageID": "", "ready": False, "restartCount": restarts, "started": False,
            "state": {"waiting": waiting}, "lastState": {"terminated": last} if last else {}}


def _running(name: str, image: str, ready: bool, restarts: int = 0, last: dict | None = None) -> dict:
    return {"name": name, "image": image, "imageID": IMAGE_ID, "ready": ready, "restartCount": restarts,
            "started": True, "state": {"running": {"startedAt": T0}},
            "lastState": {"terminated": last} if last else {}}


def _terminated(name: str, image: str, code: int = 0) -> dict:
    return {"name": name, "image": image, "imageID": IMAGE_ID, "ready": code == 0, "restartCount": 0,
            "started": False, "lastState": {},
            "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                     "startedAt": T0, "finishedAt": T0, "containerID": "containerd://0f1e"}}}


def pod(name: str, node: str | None, template: dict, init_done: int, main: str, terminating: bool = False,
        restarts: int = 0, last: dict | None = None, pulling: bool = False, created: str = T0) -> dict:
    """One pod of `template` (a DaemonSet or Deployment): `init_done` init containers finished, the main
    container 'waiting', 'running' (not ready), 'ready' or 'crashloop'."""
    spec = copy.deepcopy(template["spec"]["template"]["spec"])
    labels = dict(template["spec"]["template"]["metadata"]["labels"])
    inits = spec.get("initContainers", [])
    image = spec["containers"][0]["image"]
    if node:
        spec["nodeName"] = node
    init_statuses = []
    for index, container in enumerate(inits):
        if index < init_done:
            init_statuses.append(_terminated(container["name"], image))
        elif index == init_done and not pulling:
            init_statuses.append(_running(container["name"], image, ready=False))
        else:
            init_statuses.append(_waiting(container["name"], image, "PodInitializing"))
    main_name = spec["containers"][0]["name"]
    if main == "crashloop":
        statuses = [_waiting(main_name, image, "CrashLoopBackOff",
                             f"back-off 40s restarting failed container={main_name} pod={name}", restarts, last)]
        statuses[0]["imageID"] = IMAGE_ID
    elif main in ("running", "ready"):
        statuses = [_running(main_name, image, ready=main == "ready", restarts=restarts)]
    else:
        statuses = [_waiting(main_name, image, "PodInitializing")]
    all_init = init_done == len(inits)
    ready = main == "ready"
    status = {"phase": "Running" if all_init and main != "waiting" else "Pending", "qosClass": "Burstable",
              "startTime": T0,
              "conditions": [_condition("PodReadyToStartContainers", node is not None),
                             _condition("Initialized", all_init), _condition("Ready", ready),
                             _condition("ContainersReady", ready), _condition("PodScheduled", node is not None)]}
    if node:
        status.update(hostIP="172.18.0.3", podIP="172.18.0.3", initContainerStatuses=init_statuses,
                      containerStatuses=statuses)
    meta = {"name": name, "namespace": NAMESPACE, "labels": labels, "uid": f"uid-{name}", "creationTimestamp": created,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": template["kind"],
                                 "name": template["metadata"]["name"], "uid": "uid-owner", "controller": True,
                                 "blockOwnerDeletion": True}]}
    if terminating:
        meta["deletionTimestamp"] = T0
        meta["deletionGracePeriodSeconds"] = 1
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def agent_lifecycle(name: str, node: str) -> list[dict]:
    """The same agent pod at each step: pending, scheduled (pulling), pulled, half initialised, initialised, ready."""
    t = agent_template()
    return [pod(name, None, t, 0, "waiting"), pod(name, node, t, 0, "waiting", pulling=True),
            pod(name, node, t, 0, "waiting"), pod(name, node, t, 3, "waiting"), pod(name, node, t, 6, "running"),
            pod(name, node, t, 6, "ready")]


def ready_agent(name: str, node: str, terminating: bool = False, created: str = T0) -> dict:
    return pod(name, node, agent_template(), 6, "ready", terminating=terminating, created=created)


def ready_operator(name: str, node: str) -> dict:
    return pod(name, node, operator_template(), 0, "ready")


def crash_looping(name: str, node: str, restarts: int) -> dict:
    last = {"exitCode": 1, "reason": "Error", "message": API_FATAL, "startedAt": T0, "finishedAt": T0,
            "containerID": "containerd://9a8b"}
    return pod(name, node, agent_template(), 6, "crashloop", restarts=restarts, last=last)


def daemonset(desired: int, ready: int, updated: int, generation: int = 1) -> dict:
    ds = agent_template()
    ds["metadata"]["generation"] = generation
    ds["status"] = {"currentNumberScheduled": desired, "desiredNumberScheduled": desired, "numberAvailable": ready,
                    "numberMisscheduled": 0, "numberReady": ready, "observedGeneration": generation,
                    "updatedNumberScheduled": updated}
    return ds
