"""`tshoot walk … --trace`: the walk's packet sent for real from the source pod (through the API's exec) while
tshoot trace watches every hop on this kernel, and what the real packet did beside what the walk predicted.

The probe is what a person would send: one `ping` for ICMP (or no protocol), `nc -z` for a TCP port, `nc -u -z`
for a UDP port. Compared: a predicted delivery against a real drop (or no answer), a predicted drop against a
packet that was answered; a drop on both sides agrees in kind, and both places are shown.
"""

from __future__ import annotations

PROBE_WAIT = 2  # seconds the probe waits for an answer
DRAIN = 1.0  # seconds of events read after the probe returned


def probe_argv(destination: str, protocol: str | None, port: int | None) -> list[str]:
    if port and protocol in (None, "tcp"):
        return ["nc", "-z", "-w", str(PROBE_WAIT), destination, str(port)]
    if port and protocol == "udp":
        return ["nc", "-u", "-z", "-w", str(PROBE_WAIT), destination, str(port)]
    return ["ping", "-c", "1", "-W", str(PROBE_WAIT), destination]


def trace_expression(source_ip: str, destination: str, protocol: str | None) -> str:
    text = f"host {source_ip} and host {destination}"
    return text + (f" and {protocol}" if protocol in ("tcp", "udp", "icmp") else "")


def observe(result: dict, send, cluster=None) -> dict:
    """Trace while `send(argv)` runs the probe in the source pod: {"probe", "hops", "observed", "agrees",
    "disagreement"} (hops as `tshoot trace -o json` prints them)."""
    from tshoot.trace.filter import parse
    from tshoot.trace.tracer import Tracer

    source_ip, destination = result["source"]["ip"], result["destination"]["address"]
    protocol, port = result["destination"]["protocol"], result["destination"]["port"]
    argv = probe_argv(destination, protocol, port)
    with Tracer(parse(trace_expression(source_ip, destination, protocol)), cluster=cluster) as tracer:
        send(argv)
        hops = [e.as_dict(tracer.start_ns) for e in tracer.events(timeout=DRAIN)]
        summary = tracer.summary.as_dict()
    observed = _observed(hops, source_ip, destination)
    agrees, disagreement = _compare(result, observed)
    return {"probe": argv, "hops": hops, "observed": observed, "agrees": agrees, "disagreement": disagreement,
            "summary": summary}


def _observed(hops: list[dict], source_ip: str, destination: str) -> dict:
    request = [h for h in hops if (h["packet"]["src"], h["packet"]["dst"]) == (source_ip, destination)]
    answer = [h for h in hops if (h["packet"]["src"], h["packet"]["dst"]) == (destination, source_ip)]
    drop = next((h for h in request if h["event"] == "dropped" and "normal" not in h["drop"]), None)
    if drop is not None:
        return {"verdict": "dropped", "where": drop["where"], "device": drop["device"], "drop": drop["drop"]}
    if answer:
        return {"verdict": "answered", "where": answer[0]["where"]}
    if request:
        last = request[-1]
        return {"verdict": "unanswered", "where": last["where"], "device": last["device"], "event": last["event"]}
    return {"verdict": "not seen"}


def _compare(result: dict, observed: dict) -> tuple[bool, str | None]:
    predicted, real = result["verdict"], observed["verdict"]
    if predicted == "delivered" and real == "answered":
        return True, None
    if predicted == "stopped" and real == "dropped":
        return True, None
    if predicted == "left":
        return True, None  # the walk could not follow it: nothing to disagree with
    where = f" at {observed.get('where')} {observed.get('device') or ''}".rstrip() if observed.get("where") else ""
    if real == "dropped":
        drop = observed["drop"]
        program = drop.get("program")
        by = f" by {program['hook']} {program['direction']} program {program['name']} (id {program['id']}) on " \
             f"{program['interface']}" if program else ""
        return False, (f"the walk predicts {predicted}, but the real packet was dropped{where}: "
                       f"{drop['reason']} at {drop['location']}{by}")
    if real == "answered":
        return False, f"the walk predicts a drop ({result['reason']}), but the real packet was answered"
    if real == "unanswered":
        return False, f"the walk predicts {predicted}, but the real packet was last seen{where} and never answered"
    return False, (f"the walk predicts {predicted}, but no packet of the probe was seen on this kernel "
                   f"(is this the lab's host?)")


def pod_sender(kubeconfig: str | None, context: str | None, namespace: str, pod: str):
    """send(argv) running the probe in the source pod's first container (as the walk's own commands run)."""
    from tshoot.cluster import kube

    api = kube.api_client(kubeconfig, context)
    container = kube.get_object(api, kube.PODS, pod, namespace)["spec"]["containers"][0]["name"]
    return lambda argv: kube.exec_in_pod(api, namespace, pod, container, argv, timeout=PROBE_WAIT + kube.REQUEST_TIMEOUT)


def netns_sender(netns: str):
    """send(argv) running the probe in a local network namespace (a local walk's --pod-netns)."""
    import subprocess

    return lambda argv: subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                                       timeout=PROBE_WAIT + 10)
