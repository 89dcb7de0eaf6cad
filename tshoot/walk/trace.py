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
    source_ip, destination = result["source"]["ip"], result["destination"]["address"]
    protocol, port = result["destination"]["protocol"], result["destination"]["port"]
    argv = probe_argv(destination, protocol, port)
    hops, summary = trace_while(trace_expression(source_ip, destination, protocol), lambda: send(argv), cluster)
    seen = observed(hops, source_ip, destination)
    agrees, disagreement = _compare(result, seen)
    return {"probe": argv, "hops": hops, "observed": seen, "agrees": agrees, "disagreement": disagreement,
            "summary": summary}


def trace_while(expression: str, run, cluster=None) -> tuple[list[dict], dict]:
    """The hops (as `tshoot trace -o json` prints them) of the packets matching `expression` while `run()`
    sends them, and DRAIN seconds after; with the tracer's summary."""
    from tshoot.trace.filter import parse
    from tshoot.trace.tracer import Tracer

    with Tracer(parse(expression), cluster=cluster) as tracer:
        run()
        hops = [e.as_dict(tracer.start_ns) for e in tracer.events(timeout=DRAIN)]
        summary = tracer.summary.as_dict()
    return hops, summary


def observed(hops: list[dict], source_ip: str, destination: str) -> dict:
    """What became of the packets from source_ip to destination: {"verdict": dropped|answered|unanswered|not
    seen, "where", "device", and the drop or the last hop's event}.

    A packet is followed by its buffer (skb) from the first hop that shows it addressed to the destination, so
    that the hops after a translation count (a Service's DNAT to a backend, the node's masquerade), as long as
    one end of it is unchanged; the buffer is someone else's again once the source's namespace sends another
    packet in it. An answer is a packet from the destination (a reverse-NATed reply shows the Service's address)."""
    ours: dict[str, str] = {}  # skb -> the namespace its packet left from
    request = []
    for h in hops:
        src, dst = h["packet"]["src"], h["packet"]["dst"]
        if (src, dst) == (source_ip, destination):
            ours.setdefault(h["skb"], h["where"])
        elif h["skb"] in ours and h["event"] == "transmitted" and h["where"] == ours[h["skb"]]:
            del ours[h["skb"]]  # a new packet in a reused buffer
        if h["skb"] in ours and (src == source_ip or dst == destination):
            request.append(h)
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


def describe(seen: dict) -> str:
    """Where the real packet was last seen, as a phrase: "dropped at NETNS DEVICE: REASON at … by … program"."""
    where = f" at {seen.get('where')} {seen.get('device') or ''}".rstrip() if seen.get("where") else ""
    if seen["verdict"] == "dropped":
        drop = seen["drop"]
        program = drop.get("program")
        by = f" by {program['hook']} {program['direction']} program {program['name']} (id {program['id']}) on " \
             f"{program['interface']}" if program else ""
        return f"dropped{where}: {drop['reason']} at {drop['location']}{by}"
    if seen["verdict"] == "answered":
        return "answered"
    if seen["verdict"] == "unanswered":
        return f"last seen{where} ({seen['event']}) and never answered"
    return "not seen on this kernel (is this the lab's host?)"


def _compare(result: dict, seen: dict) -> tuple[bool, str | None]:
    predicted, real = result["verdict"], seen["verdict"]
    if predicted == "delivered" and real == "answered":
        return True, None
    if predicted == "stopped" and real == "dropped":
        return True, None
    if predicted == "left":
        return True, None  # the walk could not follow it: nothing to disagree with
    if real == "answered":
        return False, f"the walk predicts a drop ({result['reason']}), but the real packet was answered"
    if real == "not seen":
        return False, (f"the walk predicts {predicted}, but no packet of the probe was seen on this kernel "
                       f"(is this the lab's host?)")
    return False, f"the walk predicts {predicted}, but the real packet was {describe(seen)}"


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
