"""tshoot cgroup show, local backend, on a child cgroup of this machine's cgroup v2 hierarchy (never the
root): Cilium's socket-LB programs attached the old way (prog attach, every flag) and the new way (a
pinned cgroup link), a foreign program on a nested cgroup. bpftool is the reference."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests import bpfattach
from tests.conftest import bpftool, need_root

CGROUP2 = Path("/sys/fs/cgroup/unified")


@pytest.fixture(scope="module")
def cgroups(bpf_objects, tmp_path_factory):
    """(parent, child, bpffs): parent holds Cilium's programs, child a foreign one."""
    need_root()
    if not CGROUP2.is_dir():
        pytest.fail(f"{CGROUP2} (cgroup v2) is missing: these machines mount it there")
    bpffs = tmp_path_factory.mktemp("cgroupshow") / "bpffs"
    bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
    parent = CGROUP2 / f"kl-cgshow-{uuid.uuid4().hex[:8]}"
    child = parent / "pods"
    try:
        child.mkdir(parents=True)
        for name in ("cgroup_sock", "foreign"):
            bpftool("prog", "loadall", str(bpf_objects[name]), str(bpffs / name))
        progs = bpffs / "cgroup_sock"
        bpftool("cgroup", "attach", str(parent), "connect4", "pinned", str(progs / "cil_sock4_connect"), "multi")
        bpftool("cgroup", "attach", str(parent), "sendmsg4", "pinned", str(progs / "cil_sock4_sendmsg"))
        bpftool("cgroup", "attach", str(parent), "post_bind4", "pinned", str(progs / "cil_sock4_post_bind"),
                "override")
        bpfattach.cgroup_link(progs / "cil_sock6_connect", str(parent), "cgroup_inet6_connect", bpffs / "sock6_link")
        bpftool("cgroup", "attach", str(child), "connect4", "pinned", str(bpffs / "foreign" / "other_connect4"),
                "multi")
        yield parent, child, bpffs
    finally:
        for path in (child, parent):
            if path.exists():
                os.rmdir(path)
        subprocess.run(["umount", "-l", str(bpffs)], check=False)


def reference(*args: str) -> list:
    out = bpftool("-j", "cgroup", *args).stdout.strip()
    return json.loads(out) if out else []  # bpftool prints a bare newline for an empty cgroup


def test_cgroup_show_agrees_with_bpftool_and_names_links(cgroups, tshoot):
    parent, _child, bpffs = cgroups
    result = tshoot("cgroup", "show", str(parent), "--bpffs", str(bpffs), "-o", "json")
    assert result.code == 0, result
    shown = json.loads(result.out)
    assert [c["path"] for c in shown["cgroups"]] == [str(parent)]
    ours = shown["cgroups"][0]["attachments"]
    assert [(a["prog_id"], a["attach_type"], a["flags"], a["prog_name"]) for a in ours] == [
        (e["id"], e["attach_type"], e["attach_flags"], e["name"]) for e in reference("show", str(parent))]
    assert {a["prog_name"]: a["flags"] for a in ours} == {
        "cil_sock4_connect": "multi", "cil_sock6_connect": "multi", "cil_sock4_post_bind": "override",
        "cil_sock4_sendmsg": ""}
    link = next(link for link in json.loads(bpftool("-j", "-f", "link", "show").stdout)
                if str(bpffs / "sock6_link") in link.get("pinned", []))
    linked = [a for a in ours if a["link_id"]]
    assert [(a["prog_name"], a["link_id"], a["pinned"]) for a in linked] == [
        ("cil_sock6_connect", link["id"], [str(bpffs / "sock6_link")])]
    table = tshoot("cgroup", "show", str(parent), "--bpffs", str(bpffs))
    row = next(line for line in table.out.splitlines() if "cil_sock6_connect" in line).split()
    assert row[-6:] == ["cgroup_inet6_connect", str(link["prog_id"]), "cil_sock6_connect", "multi", str(link["id"]),
                        str(bpffs / "sock6_link")]


def test_effective_and_tree_agree_with_bpftool(cgroups, tshoot):
    parent, child, bpffs = cgroups
    effective = json.loads(tshoot("cgroup", "show", str(child), "--effective", "-o", "json").out)
    assert [(a["prog_id"], a["attach_type"]) for a in effective["cgroups"][0]["attachments"]] == [
        (e["id"], e["attach_type"]) for e in reference("show", str(child), "effective")]
    assert len(effective["cgroups"][0]["attachments"]) == 5   # the child's own and the four inherited
    tree = json.loads(tshoot("cgroup", "show", str(parent), "--tree", "-o", "json").out)
    expected = reference("tree", str(parent))
    assert [(c["path"], [(a["prog_id"], a["attach_type"], a["flags"]) for a in c["attachments"]])
            for c in tree["cgroups"]] == [(c["cgroup"], [(p["id"], p["attach_type"], p["attach_flags"])
                                                         for p in c["programs"]]) for c in expected]


def test_a_cgroup_without_programs_says_so(tmp_path, tshoot):
    need_root()
    empty = CGROUP2 / f"kl-cgempty-{uuid.uuid4().hex[:8]}"
    empty.mkdir()
    try:
        result = tshoot("cgroup", "show", str(empty))
        assert (result.code, result.out.strip()) == (0, f"no BPF programs attached to {empty}")
        assert json.loads(tshoot("cgroup", "show", str(empty), "-o", "json").out)["cgroups"] == [
            {"path": str(empty), "attachments": []}]
    finally:
        os.rmdir(empty)


@pytest.mark.parametrize("args, code, message", [
    (["/nonexistent/cgroup"], 1, "cgroup /nonexistent/cgroup: no such directory"),
    (["/tmp"], 1, "cgroup /tmp: not on a cgroup v2 mount"),
    ([str(CGROUP2), "--bpffs", "/tmp"], 1, "--bpffs /tmp: not a bpffs mount"),
    (["--node", "n1", "--backend", "local"], 2, "drop --backend local"),
    (["--backend", "pod"], 2, "the pod backend needs --node NAME"),
])
def test_cgroup_show_failures_are_one_line(args, code, message, tshoot):
    need_root()
    result = tshoot("cgroup", "show", *args)
    assert (result.code, result.out) == (code, "")
    assert result.err.count("\n") == 1 and message in result.err, result.err


@pytest.mark.parametrize("extra", [[], ["--tree"], ["--effective"]])
def test_cgroup_show_through_the_agent_matches_the_local_backend(extra, cgroups, kubeapi_cluster, tshoot):
    """The agent sees the node's bpffs at /sys/fs/bpf: the same link, pinned at the path the agent sees."""
    from tests.kubeapi import NodeExec, SimNode

    parent, _child, bpffs = cgroups
    kubeapi_cluster.exec_handler = NodeExec(kubeapi_cluster, {"k8s-guide-worker": SimNode(None, bpffs)})
    result = tshoot("cgroup", "show", str(parent), *extra, "--node", "k8s-guide-worker", "-o", "json",
                    "--kubeconfig", str(kubeapi_cluster.kubeconfig))
    assert result.code == 0, result
    ours = json.loads(result.out)
    reference = json.loads(tshoot("cgroup", "show", str(parent), *extra, "--bpffs", str(bpffs), "-o", "json").out)

    def seen(show, root):
        # the simulated agent's mount namespace is a copy of this machine's, so its bpftool also finds the
        # test's own mount of the same bpffs: only the agent's /sys/fs/bpf view is compared
        return [(c["path"], [(a["attach_type"], a["prog_id"], a["prog_name"], a["flags"], a["link_id"],
                              [p.replace(str(root), "BPFFS") for p in a["pinned"] if p.startswith(str(root))])
                             for a in c["attachments"]])
                for c in show["cgroups"]]

    assert seen(ours, "/sys/fs/bpf") == seen(reference, bpffs)
    assert ours["node"] == "k8s-guide-worker" and len(seen(ours, "")[0][1]) >= 4
    if not extra:
        assert ["/sys/fs/bpf/sock6_link" in a["pinned"] for a in ours["cgroups"][0]["attachments"] if a["link_id"]] == [
            True]
