"""Serve the guide's lab on the local API server, for trying tshoot by hand:

    python -m tests.kubeapi [--cilium-version 1.9.1] [--ipv6] [--kubeconfig ./kubeconfig]
    tshoot endpoints -A --kubeconfig ./kubeconfig
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path

from . import objects
from .server import KubeApiServer
from .tls import make_certs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.kubeapi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cilium-version", default="1.19.4", choices=sorted(objects.CILIUM_IMAGES))
    parser.add_argument("--ipv6", action="store_true", help="dual-stack pods")
    parser.add_argument("--kubeconfig", default="kubeconfig", help="where to write the kubeconfig")
    parser.add_argument("--context", default="kind-k8s-guide")
    args = parser.parse_args()
    cert, key, ca = make_certs(Path(tempfile.mkdtemp(prefix="kubeapi-tls-")))
    server = KubeApiServer(tls=(cert, key), ca=ca).start()
    server.add(*objects.kind_cluster(version=args.cilium_version, ipv6=args.ipv6))
    path = server.write_kubeconfig(args.kubeconfig, context=args.context)
    print(f"serving the guide's lab (Cilium {args.cilium_version}) at {server.url}; kubeconfig: {path}; Ctrl-C stops")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
