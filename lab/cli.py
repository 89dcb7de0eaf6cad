"""The `lab` typer app: parsing and printing only; the work is in the modules of this package."""

from __future__ import annotations

from tshoot.cli.app import app as tshoot_app
from tshoot.cli.common import new_app

app = new_app("lab", help="The kind + Cilium networking lab: bring it up, inspect it, clean it up.")
app.add_typer(tshoot_app, name="tshoot", help="The tshoot commands (the same as the 'tshoot' program).")


# --- clean-up (issue 6): lab nuke kube-proxy | pods, lab cilium unhook -----------------------------------
# Every command proves it targets the lab (lab/guard.py) before anything else; the work is in lab/cleanup.py.

from typing import Annotated  # noqa: E402

import typer  # noqa: E402

from tshoot.cli.common import Context, Kubeconfig  # noqa: E402

ClusterName = Annotated[str, typer.Option("--name", envvar="KIND_CLUSTER_NAME", metavar="CLUSTER",
                                          help="the lab's kind cluster name")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="print exactly the actions it would take, take none")]

nuke_app = new_app("nuke", help="Remove what the guide replaces with Cilium: kube-proxy, and every pod's old network.")
app.add_typer(nuke_app, name="nuke")


@nuke_app.command("kube-proxy")
def nuke_kube_proxy(kubeconfig: Kubeconfig = None, context: Context = None, name: ClusterName = "k8s-guide",
                    dry_run: DryRun = False,
                    timeout: Annotated[float, typer.Option(help="seconds to wait for kube-proxy pods to go")] = 120):
    """Delete kube-proxy (DaemonSet, ConfigMap) and every KUBE-* iptables chain and rule on every node.

    IPv4 and IPv6, nft and legacy backends, all nodes at once; only KUBE-* chains and the rules that jump to them go, every other rule stays as it was. Running it again changes nothing.

    Examples:

      lab nuke kube-proxy --dry-run

      lab nuke kube-proxy --name k8s-guide --context kind-k8s-guide
    """
    from .cleanup import kube_proxy

    raise typer.Exit(kube_proxy(name, kubeconfig, context, dry_run, timeout))


@nuke_app.command("pods")
def nuke_pods(kubeconfig: Kubeconfig = None, context: Context = None, name: ClusterName = "k8s-guide",
              dry_run: DryRun = False,
              include_cni: Annotated[bool, typer.Option("--include-cni", help="restart the CNI's agents too")] = False,
              timeout: Annotated[float, typer.Option(help="seconds to wait for the pods to be back")] = 300):
    """Restart every pod (all namespaces) so it gets its network from the new CNI, and wait until they are back.

    The CNI's own agents, finished pods, static pods and pods no controller would recreate are left alone (and listed). Stragglers are named when --timeout runs out (exit 1).

    Examples:

      lab nuke pods --dry-run

      lab nuke pods --timeout 600
    """
    from .cleanup import all_pods

    raise typer.Exit(all_pods(name, kubeconfig, context, dry_run, include_cni, timeout))


def cilium_unhook(kubeconfig: Kubeconfig = None, context: Context = None, name: ClusterName = "k8s-guide",
                  dry_run: DryRun = False,
                  via: Annotated[str, typer.Option(help="auto: the node's Cilium agent when one runs, else docker; "
                                                        "agent; docker (needs root)")] = "auto"):
    """Detach Cilium's socket-LB programs (cil_sock*) from every node's cgroup root and remove their link pins.

    Every program that is not Cilium's stays attached; the cgroup is listed again afterwards to prove it. Do this before deleting the lab (lab down offers it).

    Examples:

      lab cilium unhook --dry-run

      sudo lab cilium unhook --via docker
    """
    from tshoot.errors import UsageError

    from .cleanup import cilium_unhook as unhook

    if via not in ("auto", "agent", "docker"):
        raise UsageError(f"--via {via!r}: use auto, agent or docker")
    raise typer.Exit(unhook(name, kubeconfig, context, dry_run, via))


# labup's branch creates the `cilium` group too: at merge keep that one and attach `cilium_unhook` to it with
#   cilium_app.command("unhook")(cilium_unhook)
cleanup_cilium_app = new_app("cilium", help="Cilium in the lab.")
cleanup_cilium_app.command("unhook")(cilium_unhook)
app.add_typer(cleanup_cilium_app, name="cilium")
