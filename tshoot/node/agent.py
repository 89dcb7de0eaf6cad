"""Reaching a node through its Cilium agent: find the agent pod on a node, exec in it through the Kubernetes
API, run `bpftool -j`, read the agent's Cilium version. Every command that asks a cluster's nodes (`tshoot
map`, `net show`, `prog show`, `cgroup show`, `whois --ipcache`, `walk`, and `lab cilium status|unhook`)
goes through `Agent`; `PodBackend` is the maps' view of it.

What the guide does by hand:

    cilium=$(kubectl get -l k8s-app=cilium pods -n cilium --field-selector spec.nodeName=$NODE -o name)
    kubectl -n cilium exec $cilium -- bpftool map lookup pinned /sys/fs/bpf/tc/globals/cilium_ipcache key hex …

with `bpftool -j` so the answer is parsed (tshoot.core.bpftool), not scraped. The agent's Cilium version
comes from its image tag. Every exec failure becomes one line saying what to do.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shlex

from tshoot.cluster import cilium, kube
from tshoot.core.bpftool import DumpStream, hex_list, per_cpu_bytes
from tshoot.core.errors import TshootError
from tshoot.node.backend import (DEFAULT_BPFFS, PIN_DIR, TIMER_LIST, Backend, Entries, MapInfo, NotPinned,
                                 clocks_from_timer_list)
from tshoot.node.fanout import DEFAULT_TIMEOUT, NodeFailure

AGENT_PIN_DIR = f"{DEFAULT_BPFFS}/{PIN_DIR}"  # where the agent pins its maps, inside its pod
COMMANDS_AT_ONCE = 6  # exec streams open at once in one agent (the API server limits a client's streams)


class NotInImage(TshootError):
    """The agent's image lacks the program asked for (bpftool, ip)."""


class NoSuchPath(TshootError):
    """bpftool in the agent answered ENOENT: the pinned path does not exist, or a key has no next key."""


# An exec's command travels in its request's query: a script of several commands (Agent.exec_many) is cut into
# execs (run side by side) whose query stays within the 8 KB request line that proxies in front of API servers
# commonly allow (nginx's large_client_header_buffers); what is left is the path and the other parameters.
SCRIPT_BUDGET = 7000  # bytes of a script, as encoded in the query
BATCH_ROOM = 600  # what a script holds beside a batch's lines: the marking function, the command, the marks


_NEEDS_QUOTES = re.compile(r"[^\w@%+=:,./ -]", re.ASCII).search  # shlex's safe characters, and the space


def command_line(argv: list[str]) -> str:
    """shlex.join(argv), which a shell and bpftool's batch both read back as argv; in one pass over the line
    when no argument needs quoting (bpftool's: paths and hex bytes, ~1000 arguments in a lookup's search)."""
    line = " ".join(argv)
    if all(argv) and line.count(" ") == len(argv) - 1 and not _NEEDS_QUOTES(line):
        return line
    return shlex.join(argv)


def _within_request_line(pieces: list[tuple[list[str], str]], prologue: int) -> list[list]:
    """Pieces of a script in groups, in order, each group's encoded script within SCRIPT_BUDGET (a piece larger
    than that alone is a group of its own)."""
    from tshoot.cluster.transport import query_length

    groups: list[list] = [[]]
    size = prologue
    for piece in pieces:
        cost = query_length(piece[1])
        if groups[-1] and size + cost > SCRIPT_BUDGET:
            groups.append([])
            size = prologue
        groups[-1].append(piece)
        size += cost
    return groups


class Agent:
    """The Cilium agent pod of one node, and the one way to run commands in it."""

    # What to do when the image lacks a program (the advice of tshoot; `lab cilium unhook` has its own)
    INSTEAD = "run tshoot on the node as root with --backend local instead"

    def __init__(self, api, pod: dict, timeout: float = DEFAULT_TIMEOUT, note=None, instead: str = INSTEAD):
        self.api, self.timeout, self.instead = api, timeout, instead
        self.pod, self.namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        self.node = pod.get("spec", {}).get("nodeName") or "?"
        try:
            self.version = cilium.agent_version(pod)
        except TshootError as exc:
            self.version = None  # maps are then decoded by their BTF or sizes; --cilium-version chooses
            if note:
                note(f"{self.node}: {exc}")

    def exec(self, argv: list[str], what: str, timeout: float | None = None, on_stdout=None,
             stop=None) -> tuple[int | None, str, str]:
        """argv in the agent container: (exit code, stdout, stderr); a binary the image lacks as one line.
        `on_stdout`/`stop` stream the output (kube.exec_in_pod): the code is None when `stop` ended it."""
        try:
            code, out, err = kube.exec_in_pod(self.api, self.namespace, self.pod, cilium.AGENT_CONTAINER, argv,
                                              timeout=self.timeout if timeout is None else timeout,
                                              on_stdout=on_stdout, stop=stop)
        except kube.CommandNotFound as exc:
            raise self._not_in_image(argv[0], str(exc).split(': ', 1)[-1], what) from None
        except kube.ExecError as exc:
            raise kube.ExecError(f"node {self.node}: {exc}", exc.status) from None
        self.runnable(argv, code, err, what)
        return code, out, err

    def runnable(self, argv: list[str], code: int | None, err: str, what: str) -> None:
        """NotInImage for the shell's exit 126 ("not executable") or 127 ("not found") of argv."""
        if code in (126, 127):
            raise self._cannot_run(argv[0], code, err, what)

    def _not_in_image(self, program: str, detail: str, what: str) -> NotInImage:
        return NotInImage(f"{program} is not in the agent image of {self.namespace}/{self.pod} (node {self.node}; "
                          f"{detail}): {what} needs it; {self.instead}")

    def _cannot_run(self, program: str, code: int, err: str, what: str) -> NotInImage:
        """The shell's exit 127 (not found on its PATH) or 126 (found, not executable)."""
        if code == 127:
            return self._not_in_image(program, f"exit 127: {err.strip() or 'not found'}", what)
        return NotInImage(f"{program} cannot run in the agent image of {self.namespace}/{self.pod} (node "
                          f"{self.node}, exit {code}: {err.strip() or 'not executable'}): {what} needs it; {self.instead}")

    def exec_many(self, commands: list, what: str, lacking_ok: bool = False) -> list[tuple[int, str, str]]:
        """Several commands in ONE exec (one round trip through the API server instead of one each), run one
        after the other by `sh -c`: [(exit code, stdout, stderr)] per command, in order, each as if run alone.
        A script too long for one request line (SCRIPT_BUDGET) is run as a few execs side by side: still one
        round trip.
        A command is an argv, or (argv, text) for one that reads `text` on its standard input.

        The script ends each command's stdout with a line `MARK CODE` and its stderr with a line `MARK`, where
        MARK is random per call (a command cannot print it by chance), each preceded by a newline so that
        output without a trailing newline stays apart. (`bpftool batch` is no substitute: it stops at the
        first failing command, and a lookup that finds nothing fails; only where each command is needed only if
        the ones before it answered is it one: PodBackend.prefetch.) One argv runs as itself, no shell.
        A program the image lacks is NotInImage; with `lacking_ok`, its exit 127 is its answer (runnable())."""
        if not commands:
            return []
        if len(commands) == 1 and not isinstance(commands[0], tuple) and not lacking_ok:
            return [self.exec(commands[0], what)]
        mark = f"tshoot-{secrets.token_hex(12)}"
        # e CODE ends a command's output: its stdout with `MARK CODE`, its stderr with `MARK`
        prologue = f"e() {{ printf '\\n%s %s\\n' {mark} $1; printf '\\n%s\\n' {mark} >&2; }}\n"
        pieces = []  # (argv, its lines of the script)
        for command in commands:
            argv, text = command if isinstance(command, tuple) else (command, None)
            if text is None:
                pieces.append((argv, f"{command_line(argv)} </dev/null; e $?\n"))
            else:  # a here-document ended by the mark: the text cannot end it early
                pieces.append((argv, f"{command_line(argv)} <<'{mark}'; e $?\n{text.rstrip(chr(10))}\n{mark}\n"))
        from tshoot.cluster.transport import query_length

        groups = _within_request_line(pieces, query_length(prologue))
        answers = self.concurrently(*(lambda group=group: self._exec_script(prologue, group, mark, what, lacking_ok)
                                      for group in groups))
        return [result for answer in answers for result in answer]

    def _exec_script(self, prologue: str, pieces: list[tuple[list[str], str]], mark: str, what: str,
                     lacking_ok: bool) -> list[tuple[int, str, str]]:
        """One exec of `sh -c` running these pieces of exec_many's script."""
        code, out, err = self.exec(["sh", "-c", prologue + "".join(line for _, line in pieces)], what)
        outs, errs = out.split(f"\n{mark} "), err.split(f"\n{mark}\n")
        if code != 0 or len(outs) != len(pieces) + 1 or len(errs) != len(pieces) + 1 or errs[-1]:
            raise TshootError(f"node {self.node}: {what}: the shell running {len(pieces)} commands in one exec "
                              f"ended early (exit {code}: {(err.strip().splitlines() or ['no error'])[-1]})")
        results = []
        for i, (argv, _) in enumerate(pieces):
            text = outs[i] if i == 0 else outs[i].split("\n", 1)[1]
            status = int(outs[i + 1].split("\n", 1)[0])
            if not lacking_ok:
                self.runnable(argv, status, errs[i], shlex.join(argv[:4]))
            results.append((status, text, errs[i]))
        return results

    def run(self, argv: list[str], what: str | None = None) -> str:
        """argv's stdout; a non-zero exit as one line with the last line of its stderr."""
        return self.output(argv, *self.exec(argv, what or " ".join(argv[:3])))

    def output(self, argv: list[str], code: int, out: str, err: str) -> str:
        """What argv answered (run, exec_many): its stdout; a non-zero exit as one line with its last stderr line."""
        if code != 0:
            detail = (err.strip().splitlines() or [f"exit code {code}"])[-1]
            raise TshootError(f"node {self.node}: {' '.join(argv[:3])}: {detail}")
        return out

    def bpftool(self, *args: str, missing_ok: bool = False, repair=None):
        """`bpftool -j ARGS` parsed (repair: a function that reads bpftool's text when it is not plain JSON);
        bpftool's own {"error": …} answers as one line; None for a lookup that found nothing (missing_ok)."""
        return self.bpftool_text(*args, missing_ok=missing_ok, repair=repair)[0]

    def bpftool_text(self, *args: str, missing_ok: bool = False, repair=None):
        """(parsed JSON, the text) of `bpftool -j ARGS`."""
        what = _bpftool_what(args)
        code, out, err = self.exec(["bpftool", "-j", *args], what)
        return self.parsed(what, code, out, err, missing_ok, repair)

    def ask(self, args: list[str]) -> "Answer":
        """`bpftool -j ARGS`'s Answer, read when asked (a lookup that found nothing, a getnext past the last key,
        are answers, not failures)."""
        return Answer(self, args, *self.exec(["bpftool", "-j", *args], _bpftool_what(args)))

    def parsed(self, what: str, code: int, out: str, err: str, missing_ok: bool = False, repair=None):
        """(parsed JSON, the text) of bpftool's answer; its failure as one line (check)."""
        text = out.strip()
        data = None
        if text:
            try:
                data = repair(text) if repair else json.loads(text)
            except ValueError:
                raise TshootError(f"node {self.node}: {what}: unreadable output {text[:120]!r}") from None
        self.check(data, code, err, what, missing_ok)
        return data, text

    def check(self, data, code: int, err: str, what: str, missing_ok: bool = False) -> None:
        """bpftool's own {"error": …} answer, or its failure, as one line."""
        if isinstance(data, dict) and "error" in data:
            # bpftool's JSON error is libbpf's strerror text; ENOENT's (a path that is not pinned, a key with
            # no next key) is the only one told apart, here where bpftool's output is read.
            missing = os.strerror(errno.ENOENT) in str(data["error"])
            raise (NoSuchPath if missing else TshootError)(f"node {self.node}: {what}: {data['error']}")
        if code != 0 and not (missing_ok and data is None):
            raise TshootError(f"node {self.node}: {what}: {(err.strip().splitlines() or [f'exit code {code}'])[-1]}")

    def concurrently(self, *calls):
        """The results of zero-argument calls that each exec in this agent, run side by side (each exec is a
        round trip that mostly waits), in the calls' order."""
        if len(calls) <= 1:
            return [call() for call in calls]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(COMMANDS_AT_ONCE, len(calls))) as pool:
            return [f.result() for f in [pool.submit(call) for call in calls]]

    def command(self, argv: list[str]) -> str:
        """The kubectl command that runs argv where this agent does."""
        return f"kubectl -n {self.namespace} exec {self.pod} -c {cilium.AGENT_CONTAINER} -- {shlex.join(argv)}"

    def preamble(self) -> list[str]:
        return [f"kubectl -n {self.namespace} get pods -l {cilium.AGENT_LABEL} "
                f"--field-selector spec.nodeName={self.node} -o name   # the agent on {self.node}: {self.pod}"]


class Answer:
    """One bpftool command's answer (Agent.ask, PodBackend.prefetch)."""

    UNREAD = object()

    def __init__(self, agent: Agent, args: list[str], code: int, out: str, err: str, output=UNREAD):
        """`args`: bpftool's; `output`: the command's JSON already parsed (a `bpftool -j batch` answers each
        command's in its own)."""
        self.agent, self.args, self.code, self.out, self.err, self.output = agent, args, code, out, err, output

    @property
    def what(self) -> str:  # for a message: named only when one is written
        return _bpftool_what(self.args)

    def data(self, missing_ok: bool = False):
        """The parsed JSON, as Agent.bpftool would answer it (raises what it would raise)."""
        if self.output is Answer.UNREAD:
            return self.agent.parsed(self.what, self.code, self.out, self.err, missing_ok)[0]
        if self.code:  # a batch's command that failed (PodBackend._kept_batch): said as alone
            self.agent.check(self.output, self.code, self.err, self.what, missing_ok)
        return self.output


def _bpftool_what(args) -> str:
    return f"bpftool {' '.join(a for a in args if not a.startswith('-'))}"


def find_agent(api, node: str, namespace: str | None = None, timeout: float = DEFAULT_TIMEOUT, note=None) -> Agent:
    """The agent on `node` (a running one where the DaemonSet is rolling)."""
    return Agent(api, cilium.agent_pod(api, node, namespace), timeout, note)


class PodBackend(Backend):
    """A node's maps read by bpftool in its agent. Every exec is a round trip through the API server, so what
    a command asks together goes in one exec (prefetch, Agent.exec_many), and every answer is kept for the
    command (Backend.once): a backend lives for one command, which reads the node as of one moment."""

    kind = "pod"

    def __init__(self, agent: Agent):
        self.agent, self.node, self.version = agent, agent.node, agent.version

    def pin_path(self, name: str) -> str:
        return f"{AGENT_PIN_DIR}/{name}"

    # --- maps ----------------------------------------------------------------------------------------
    def info(self, name: str) -> MapInfo:
        return self.once(("info", name), lambda: self._info(name, self.agent.ask(self._show(name))))

    def _show(self, name: str) -> list[str]:
        return ["map", "show", "pinned", self.pin_path(name)]

    def _info(self, name: str, answer: "Answer") -> MapInfo:
        path = self.pin_path(name)
        try:
            return _map_info(answer.data(), name, path)
        except NoSuchPath:
            raise NotPinned(f"map {name} is not pinned at {path} on {self.node} (this Cilium version or "
                            f"configuration does not use it)") from None

    def lookup(self, info: MapInfo, key: bytes) -> bytes | None:
        return self.once(("lookup", info.path, key), lambda: self._value(
            self.agent.ask(_lookup(info.path, key))))

    @staticmethod
    def _value(answer: "Answer") -> bytes | None:
        found = answer.data(missing_ok=True)
        return None if found is None else _value(found)

    def prefetch(self, names=(), lookups=(), searches=()) -> None:
        """All of it in one exec: `map show` of each map, `map lookup` of each key, and each LPM search's
        `map getnext` from each candidate prefix (first_entry), as bpftool commands. Answers that fail are not
        kept: asked again where they are used, they fail there with their own message.

        When the questions are one chain, each needed only if every one before it answered (one map's info,
        ONE lookup in it, the search for the prefix that answered it: a map that is not pinned answers no
        lookup, a lookup that finds nothing has no prefix to search, and a getnext from the map's last key
        ends the search), they are one `bpftool -j batch` (one process in the agent instead of a shell and
        one per command), which stops where the chain ends. Otherwise each runs on its own in one script
        (Agent.exec_many), a search as a batch of its getnexts."""
        chain: list[tuple[list[str], object]] = []  # (bpftool's arguments, what to keep of its Answer)
        for name in dict.fromkeys(names):
            if not self.known(("info", name)):
                chain.append((self._show(name), lambda a, n=name: self._keep(("info", n), lambda: self._info(n, a))))
        for name, key in dict.fromkeys(lookups):
            path = self.pin_path(name)
            if not self.known(("lookup", path, key)):
                chain.append((_lookup(path, key),
                              lambda a, k=("lookup", path, key): self._keep(k, lambda: self._value(a))))
        searched = []  # per search, its getnexts
        for name, candidates in searches:
            path = self.pin_path(name)
            getnexts = [(_getnext(path, key), lambda a, k=("next", path, key): self._keep(k, lambda: _next_key(a)))
                        for key in self._unsearched(path, candidates)]
            if getnexts:
                searched.append(getnexts)
        every = chain + [ask for getnexts in searched for ask in getnexts]
        one_chain = len({args[3] for args, _ in every}) == 1 and sum(args[1] == "lookup" for args, _ in chain) <= 1
        if len(every) <= 1 or self.__dict__.get("_no_batch"):
            self._run(every)
        elif one_chain:
            if not self._run([], [every]):
                self._run(every)  # this bpftool reads no batch: each command alone, still one exec
        elif not self._run(chain, searched):
            self._run([ask for getnexts in searched for ask in getnexts])

    def _run(self, asks: list, batches: list = ()) -> bool:
        """In one exec (Agent.exec_many): each ask ((bpftool's arguments, keep)) as its own command, and each of
        `batches` (lists of asks) as one `bpftool -j batch`; their answers kept. False when bpftool answered a
        batch as one that reads none. A batch longer than a request line allows is cut into batches (run side by
        side by exec_many: still one round trip; a part after one that stopped early runs anyway)."""
        batches = [part for batch in batches for part in _batch_parts(batch)]
        commands = [["bpftool", "-j", *args] for args, _ in asks] + [_batch(batch) for batch in batches]
        if not commands:
            return True
        ran = self.agent.exec_many(commands, f"reading maps ({len(commands)} bpftool commands in one exec)")
        for (args, keep), answer in zip(asks, ran):
            keep(Answer(self.agent, args, *answer))
        return all([self._kept_batch(batch, answer) for batch, answer in zip(batches, ran[len(asks):])])

    def _kept_batch(self, batch: list, ran: tuple[int, str, str]) -> bool:
        """Keep what each command of a `bpftool -j batch` answered: [{"command": [...], "output": ...}] for the
        commands it ran; it stops at the first that fails (its output is its error, or null for a lookup that
        found nothing, as alone), so the later ones are not kept. Not such a list (a bpftool that cannot read a
        batch from its standard input answers one {"error": …}): False, and from then on every command runs
        alone (_no_batch)."""
        try:
            items = json.loads(ran[1])
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(item, dict) and "output" in item for item in items):
            self._no_batch = True
            return False
        for (args, keep), item in zip(batch, items):
            output = item["output"]
            failed = output is None or (isinstance(output, dict) and "error" in output)
            keep(Answer(self.agent, args, 1 if failed else 0, "", "", output))
        return True

    def _unsearched(self, path: str, candidates: list[bytes]) -> list[bytes | None]:
        """The keys of a search (None: the first key, then the candidates) whose next key is not known yet, up
        to the first candidate known to be an entry (where the search ends)."""
        def kept(key: bytes | None) -> bytes | None:
            return self.once(("next", path, key), lambda: None)

        unknown, first_known = [], self.known(("next", path, None))
        for key in [None, *dict.fromkeys(candidates)]:
            if not self.known(("next", path, key)):
                unknown.append(key)
            elif key is not None and first_known and kept(key) != kept(None):
                break
        return unknown

    def _keep(self, key, read) -> None:
        try:
            self.remember(key, read())
        except NotPinned as exc:
            self.remember(key, exc)  # an answer: once() raises it where it is asked
        except TshootError:
            pass  # asked again where it is used, it fails there with its own message

    def first_entry(self, info: MapInfo, keys: list[bytes]) -> int | None:
        """`bpftool map getnext` from the first key and from each of `keys`: a key is an entry when its next key
        is not the first one (tshoot.node.local says why). All asked in one exec, as one `bpftool -j batch`
        (one process for all; Backend.prefetch may have asked them already with the lookup), so only next keys
        cross the stream, never the map."""
        path = info.path

        def next_of(i: int) -> bytes | None:  # -1: the first key
            key = keys[i] if i >= 0 else None
            if not self.known(("next", path, key)):
                self.prefetch(searches=[(info.name, keys[max(i, 0):])])  # info.path is pin_path(info.name)
            return self._next(path, key)

        first = next_of(-1)
        if first is None:
            return None  # an empty map: no key is an entry
        return next((i for i in range(len(keys)) if next_of(i) != first), None)

    def _next(self, path: str, key: bytes | None) -> bytes | None:
        """A next key as the search answered it, else asked alone."""
        return self.once(("next", path, key), lambda: _next_key(self.agent.ask(_getnext(path, key))))

    def dump(self, info: MapInfo) -> Entries:
        """The map's entries, parsed as bpftool's JSON arrives (tshoot.core.bpftool.DumpStream): memory for
        the entries' bytes, not for the dump's text."""
        stream, what = DumpStream(), "bpftool map dump"
        code, _, err = self.agent.exec(["bpftool", "-j", "map", "dump", "pinned", info.path], what,
                                       on_stdout=stream.feed)
        if code == 0 or stream.answer is not None:
            try:
                stream.finish()
            except TshootError as exc:
                raise TshootError(f"node {self.node}: {exc}") from None
        self.agent.check(stream.answer, code, err, what)
        # per-CPU maps: every CPU's value of an entry one after the other
        stride = len(stream.values) // stream.count if stream.count else info.value_size
        return Entries(info.key_size, stride, bytes(stream.keys), bytes(stream.values))

    def list_maps(self) -> list[MapInfo]:
        shown = self.agent.bpftool("-f", "map", "show") or []
        infos = []
        for item in shown:
            pinned = [p for p in item.get("pinned", []) if p.startswith(AGENT_PIN_DIR + "/")]
            if pinned:
                infos.append(_map_info(item, pinned[0].rsplit("/", 1)[1], pinned[0]))

        def count(info: MapInfo) -> None:
            try:
                info.entries = len(self.dump(info))
            except TshootError:
                info.entries = None  # e.g. a program array: bpftool cannot dump it from user space

        self.agent.concurrently(*(lambda i=info: count(i) for info in infos))
        return sorted(infos, key=lambda i: i.name)

    def btf_types(self, info: MapInfo) -> tuple[dict, int, int]:
        from tshoot.core.btf import parse_types

        # `btf dump map` names the key and value types (one when both are the same), `btf dump id` has them all
        # (maps of one object share it: read once per BTF id).
        top = self.once(("btf map", info.path), lambda: (
            self.agent.bpftool("btf", "dump", "map", "pinned", info.path) or {}).get("types") or [{}])
        types = self.once(("btf", info.btf_id), lambda: parse_types(
            self.agent.bpftool_text("btf", "dump", "id", str(info.btf_id))[1]))
        return types, top[0].get("id", 0), top[-1].get("id", 0)

    def interfaces(self) -> dict[int, str]:
        return {link["ifindex"]: link["ifname"] for link in json.loads(self.agent.run(["ip", "-j", "link", "show"],
                                                                                        "interface names"))}

    def clock_samples(self) -> tuple[int, int]:
        return clocks_from_timer_list(self.agent.run(["cat", TIMER_LIST], "the node's clocks"))

    def program_names(self) -> dict[int, str]:
        return {p["id"]: p.get("name", "") for p in self.agent.bpftool("prog", "show") or []}

    # --- teaching view -------------------------------------------------------------------------------
    def command(self, argv: list[str]) -> str:
        return self.agent.command(argv)

    def preamble(self) -> list[str]:
        return self.agent.preamble()


def agents(api, node: str | None = None, namespace: str | None = None, timeout: float = DEFAULT_TIMEOUT,
           note=None) -> list[Agent | NodeFailure]:
    """The agent on `node`, or on every node, from one list of the agent pods; a node without one is a
    NodeFailure in its place (tshoot.node.fanout passes it through as that node's answer)."""
    if node:
        return [find_agent(api, node, namespace, timeout, note)]
    by_node: dict[str, dict] = {}
    for pod in cilium.agent_pods(api, namespace):  # a running one where the DaemonSet is rolling
        name = pod.get("spec", {}).get("nodeName")
        if name and (name not in by_node or pod.get("status", {}).get("phase") == "Running"):
            by_node[name] = pod
    nodes = sorted(n["metadata"]["name"] for n in kube.list_objects(api, kube.NODES))
    if not nodes:
        raise TshootError("the cluster has no nodes")
    return [Agent(api, by_node[name], timeout, note) if name in by_node else
            NodeFailure(name, f"no Cilium agent pod on node {name} (label {cilium.AGENT_LABEL}): is the cilium "
                              f"DaemonSet scheduled there?") for name in nodes]


def pod_backends(api, node: str | None = None, namespace: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 note=None) -> list[PodBackend | NodeFailure]:
    """The maps of the agent on `node`, or of every node's agent (tshoot.node.agent.agents)."""
    return [PodBackend(a) if isinstance(a, Agent) else a for a in agents(api, node, namespace, timeout, note)]


def _value(item: dict) -> bytes:
    """An entry's value; a per-CPU map's ({"values": [{"cpu": 0, "value": [...]}, …]}) as the kernel lays it out."""
    if "values" in item:
        return per_cpu_bytes([hex_list(v["value"]) for v in item["values"]])
    return hex_list(item["value"])


def _lookup(path: str, key: bytes) -> list[str]:
    return ["map", "lookup", "pinned", path, "key", "hex", *key.hex(" ").split()]


def _getnext(path: str, key: bytes | None) -> list[str]:
    return ["map", "getnext", "pinned", path, *(["key", "hex", *key.hex(" ").split()] if key is not None else [])]


def _next_key(answer: Answer) -> bytes | None:
    """A getnext's next key; None after the last entry (bpftool: ENOENT)."""
    try:
        return hex_list(answer.data()["next_key"])
    except NoSuchPath:
        return None


def _batch_parts(asks: list) -> list[list]:
    """A batch's asks in parts whose lines fit one exec's request line (SCRIPT_BUDGET, less room for the
    script's own lines): an LPM search of an IPv6 key has up to 129 getnexts."""
    from tshoot.cluster.transport import query_length

    parts: list[list] = [[]]
    size = 0
    for ask in asks:
        cost = query_length(command_line(ask[0])) + 3  # the line's end, as encoded
        if parts[-1] and size + cost > SCRIPT_BUDGET - BATCH_ROOM:
            parts.append([])
            size = 0
        parts[-1].append(ask)
        size += cost
    return parts


def _batch(asks: list) -> tuple[list[str], str]:
    """One `bpftool -j batch` of the asks' commands, read from its standard input (PodBackend._kept_batch)."""
    return ["bpftool", "-j", "batch", "file", "-"], "".join(command_line(args) + "\n" for args, _ in asks)


def _map_info(shown: dict, name: str, path: str) -> MapInfo:
    return MapInfo(name=name, path=path, map_type=shown.get("type", "?"), key_size=shown.get("bytes_key", 0),
                   value_size=shown.get("bytes_value", 0), max_entries=shown.get("max_entries", 0),
                   flags=shown.get("flags", 0), map_id=shown.get("id"), btf_id=shown.get("btf_id", 0))
