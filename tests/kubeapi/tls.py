"""A CA and a serving certificate for 127.0.0.1, made with the openssl command line once per test session
(the `cryptography` package is not among the project's dependencies; openssl is on every machine)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SUBJECT_ALT_NAMES = "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,DNS:k8s-guide-control-plane"


def make_certs(directory: Path) -> tuple[Path, Path, Path]:
    """(server certificate, server key, CA certificate), like kubeadm's apiserver.crt signed by ca.crt."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "apiserver.key", directory / "apiserver.csr", directory / "apiserver.crt"
    ext = directory / "apiserver.ext"
    ext.write_text(f"subjectAltName={SUBJECT_ALT_NAMES}\nextendedKeyUsage=serverAuth\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=critical,CA:FALSE\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "3650", "-subj", "/CN=kubernetes",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,digitalSignature")
    _openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=kube-apiserver")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
             "-days", "3650", "-extfile", ext)
    return crt, key, ca_crt


def _openssl(*args) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_client_cert(directory: Path, user: str = "kubernetes-admin", group: str = "kubeadm:cluster-admins"
                     ) -> tuple[Path, Path]:
    """(certificate, key) of a user the CA of make_certs signed, like the admin certificate in kind's kubeconfig."""
    key, csr, crt = directory / f"{user}.key", directory / f"{user}.csr", directory / f"{user}.crt"
    ext = directory / f"{user}.ext"
    ext.write_text("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
             "-out", csr, "-subj", f"/O={group}/CN={user}")
    _openssl("x509", "-req", "-in", csr, "-CA", directory / "ca.crt", "-CAkey", directory / "ca.key",
             "-CAcreateserial", "-out", crt, "-days", "3650", "-extfile", ext)
    return crt, key
