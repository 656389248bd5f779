"""The README's two-host walkthrough works as written.

The commands, the nats-server configuration, the credentials file and the check are read out of
README.md ("Several hosts: bridging through NATS JetStream"), so the test fails when the README and
the code part ways. Two hosts on one machine: each has its own directory (its ``/etc``, relay
run directory and journals) and environment; host A's address and NATS ports become loopback and
free ports, the ``/etc`` and ``/var/lib`` paths move under the host's directory, the password is
generated. Everything the walkthrough starts runs as written: nats-server with its configuration
and the included authorization file, the relays, bridge out and bridge in with the credentials
file, and the ``relay-cli stats`` check. The application processes (collector, strategy, executor)
need a chain; the test stands in for them with a producer on host A's market-data relay and a
consumer on host B's, which must see every message exactly once, in order, with host A's domain
sequence. Step 5's deployment entry goes through the systemd generator and must give the unit lines
the README names.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import trio
from natskit import require_nats_server
from relay_testkit import ROOT, stop_processes, wait_for, wait_listening

from relays.client import RelayConsumer, RelayProducer
from tools.bench.bridge import BRIDGED_RELAY
from tools.nats_server import free_port

SECTION = "## Several hosts: bridging through NATS JetStream"
HOST_A = "10.0.0.1"
APPLICATIONS = ("collector", "strategy", "executor")  # need a chain: the test's producer/consumer stand in
N = 3000


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1]
    return re.split(r"^## ", body, maxsplit=1, flags=re.M)[0]


def _fenced(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of each fenced block, list indentation removed."""
    out = []
    for m in re.finditer(r"^( *)```(\w*)\n(.*?)^\1```", text, re.M | re.S):
        indent = len(m.group(1))
        out.append((m.group(2), "".join(line[indent:] + "\n" for line in m.group(3).splitlines())))
    return out


def _step(text: str, title: str) -> str:
    """The text of one numbered step (``N. **title**...`` up to the next step)."""
    m = re.search(rf"^\d+\. \*\*{re.escape(title)}.*?(?=^\d+\. \*\*|\Z)", text, re.M | re.S)
    assert m, f"the walkthrough has no step {title!r}"
    return m.group(0)


def _inline(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def _commands(block: str) -> list[list[str]]:
    """One argv per command of a shell block (``a & b &`` is two commands)."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        for part in line.split("&"):
            if part.strip() and not part.strip().startswith("#"):
                out.append(shlex.split(part, comments=True))
    return out


class Host:
    """One simulated host: its directory stands for ``/``, with its own relay run directory."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.dir = root / name
        self.dir.mkdir()
        self.run_dir = self.dir / "run"
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", ALPHAPULSE_RUN_DIR=str(self.run_dir))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def path(self, p: str) -> str:
        """A host path (``/etc/...``, ``/var/lib/...``) inside this host's directory."""
        return str(self.dir / p.lstrip("/")) if p.startswith(("/etc/", "/var/")) else p

    def argv(self, words: list[str]) -> list[str]:
        words = [self.path(w) for w in words]
        if words[0] == "alphapulse":
            return [sys.executable, "-m", "tools.cli", *words[1:]]
        if words[0] == "relay-cli":
            return [sys.executable, "-m", "tools.cli", "relay-cli", *words[1:]]
        return words

    def start(self, words: list[str]) -> subprocess.Popen[bytes]:
        label = "-".join(Path(w).name for w in words[:3] if not w.startswith("-"))
        log = self.dir / f"{len(self.procs):02d}-{label}.log"
        with open(log, "wb") as f:
            p = subprocess.Popen(self.argv(words), cwd=self.dir, env=self.env, stdout=f, stderr=subprocess.STDOUT)
        self.procs.append(p)
        self.logs.append(log)
        return p

    def run(self, words: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(words), cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=60)

    def socket(self, domain: str) -> Path:
        return self.run_dir / f"{domain}.sock"

    def stop(self) -> None:
        stop_processes(self.procs, 10)

    def dump_logs(self) -> None:
        for log in self.logs:
            sys.stderr.write(f"==== host {self.name}: {log.name}\n{log.read_text(errors='replace')[-3000:]}\n")


def _parts() -> dict[str, object]:
    """What the walkthrough says to write and run, read from the README."""
    text = _section()
    creds_step = _step(text, "NATS credentials")
    conf_blocks = [body for lang, body in _fenced(creds_step) if not lang]
    assert len(conf_blocks) == 1, "step 1 shows one nats-server configuration block"
    spans = _inline(creds_step)
    auth_conf = next(s for s in spans if s.startswith("authorization"))
    server = next(s for s in spans if s.startswith("nats-server "))
    conf_path = server.split()[server.split().index("-c") + 1]
    auth_path = next(s for s in spans if s.endswith("-auth.conf") and s.startswith("/"))
    creds_path = next(s for s in spans if s.endswith(".creds"))
    creds_line = next(s for s in spans if s.endswith("<the same password>"))
    hosts = {}
    for name in ("Host A", "Host B"):
        blocks = [body for lang, body in _fenced(_step(text, name)) if lang == "sh"]
        assert len(blocks) == 1, f"step {name!r} shows one shell block"
        hosts[name] = _commands(blocks[0])
    check = next(s for s in _inline(_step(text, "Check")) if s.startswith("relay-cli "))
    return {"conf": conf_blocks[0], "conf_path": conf_path, "auth_path": auth_path, "auth_conf": auth_conf,
            "server": shlex.split(server), "creds_path": creds_path, "creds_line": creds_line, "hosts": hosts, "check": shlex.split(check)}


def test_walkthrough_is_complete() -> None:
    """What the runnable test relies on is in the README (a quick check that runs without nats-server)."""
    p = _parts()
    hosts = p["hosts"]
    assert isinstance(hosts, dict)
    a = [" ".join(c[:4]) for c in hosts["Host A"]]
    b = [" ".join(c[:4]) for c in hosts["Host B"]]
    assert "alphapulse relay --domain market_data" in a and any(c.startswith("alphapulse bridge out") for c in a)
    assert "alphapulse relay --domain market_data" in b and any(c.startswith("alphapulse bridge in") for c in b)
    # bench bridge runs host B's relay as the walkthrough does
    (relay_b,) = [c for c in hosts["Host B"] if c[:4] == ["alphapulse", "relay", "--domain", "market_data"]]
    assert " ".join(BRIDGED_RELAY) in " ".join(relay_b)
    # the include names the authorization file the text tells you to write, beside the configuration
    include = re.search(r"^include\s+(\S+)", str(p["conf"]), re.M)
    assert include, "the server configuration includes the authorization file"
    assert Path(str(p["conf_path"])).parent / Path(include.group(1)).name == Path(str(p["auth_path"]))


def test_two_host_walkthrough(short_dir: Path) -> None:
    nats_server = require_nats_server()  # Debian's is in /usr/sbin, not always on a user's PATH
    p = _parts()
    port, http_port = free_port(), free_port()
    password = secrets.token_urlsafe(24)
    sub = {f"{HOST_A}:4222": f"127.0.0.1:{port}", "127.0.0.1:8222": f"127.0.0.1:{http_port}"}

    def local(s: str) -> str:
        for k, v in sub.items():
            s = s.replace(k, v)
        return s

    a, b = Host(short_dir, "a"), Host(short_dir, "b")
    try:
        # step 1: the NATS server (on host A), its authorization file, and each bridge host's credentials
        conf = a.dir / str(p["conf_path"]).lstrip("/")
        conf.parent.mkdir(parents=True)
        text = local(str(p["conf"]))
        store = re.search(r'store_dir:\s*"([^"]+)"', text)
        assert store, "the server configuration sets JetStream's store_dir"
        text = text.replace(store.group(1), a.path(store.group(1)))
        conf.write_text(text)
        auth = Path(a.path(str(p["auth_path"])))
        auth.write_text(str(p["auth_conf"]).replace("<long random>", password) + "\n")
        auth.chmod(0o600)
        for host in (a, b):
            creds = Path(host.path(str(p["creds_path"])))
            creds.parent.mkdir(parents=True, exist_ok=True)
            creds.write_text(str(p["creds_line"]).replace("<the same password>", password) + "\n")
            creds.chmod(0o600)
        server = list(p["server"])  # type: ignore[call-overload]
        assert server[0] == "nats-server"
        a.start([nats_server, *server[1:]])
        wait_for("nats-server to listen", lambda: _listening(port), 60, 0.1)

        # steps 2 and 3: every command of host A and host B, the applications stood in for
        hosts = p["hosts"]
        assert isinstance(hosts, dict)
        for host, cmds in ((a, hosts["Host A"]), (b, hosts["Host B"])):
            for words in cmds:
                words = [local(w) for w in words]
                if words[0] == "alphapulse" and words[1] in APPLICATIONS:
                    continue
                proc = host.start(words)
                if words[:2] == ["alphapulse", "relay"]:
                    wait_listening(host.socket(words[words.index("--domain") + 1]), proc)
        wait_for("both bridges to attach", lambda: _bridges_attached(a, b), 60, 0.1)

        # publish on host A, consume on host B: every message once, in order, host A's sequence
        received = trio.run(_publish_and_consume, a.socket("market_data"), b.socket("market_data"))
        assert [seq for seq, _ in received] == list(range(1, N + 1))
        assert [body for _, body in received] == [_payload(i) for i in range(1, N + 1)]

        # step 4: the check, on either host, lists the bridge with its position and no lag
        for host, row in ((a, {"direction": "out", "read": N, "acked": N, "lag": 0}),
                          (b, {"direction": "in", "position": N, "lag": 0})):
            r = host.run([local(w) for w in p["check"]] + ["--json"])
            assert r.returncode == 0, r.stderr
            entry = json.loads(r.stdout)[0]
            assert entry["stats"]["head_seq"] == N
            (bridge,) = entry["bridges"]
            assert {k: bridge[k] for k in row} == row
        for host in (a, b):
            assert all(pr.poll() is None for pr in host.procs), f"a process of host {host.name} exited"

        # a wrong password: one line naming the problem (never the password), exit status 2
        bad = a.dir / "wrong.creds"
        bad.write_text(str(p["creds_line"]).replace("<the same password>", "not-" + password) + "\n")
        bad.chmod(0o600)
        (bridge_out,) = [c for c in hosts["Host A"] if c[:3] == ["alphapulse", "bridge", "out"]]
        words = [local(w) for w in bridge_out]
        words[words.index("--nats-auth-file") + 1] = str(bad)
        r = a.run(words)
        assert r.returncode == 2, r.stderr
        assert "refused the credentials" in r.stderr and "Traceback" not in r.stderr and password not in r.stderr
    except BaseException:
        a.dump_logs()
        b.dump_logs()
        raise
    finally:
        b.stop()
        a.stop()
    logs = "".join(log.read_text(errors="replace") for log in a.logs + b.logs)
    assert password not in logs  # the password is in no log line


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(5) == b"INFO "
    except OSError:
        return False


def _bridges_attached(a: Host, b: Host) -> bool:
    def names(host: Host, kind: str) -> list[str]:
        r = host.run(["relay-cli", "stats", "--domain", "market_data", "--json"])
        if r.returncode:
            return []
        return [str(x.get("name", "")) for x in json.loads(r.stdout)[0]["stats"][kind]]

    return any(n.startswith("bridge-out") for n in names(a, "consumers")) and any(
        n.startswith("bridge-in") for n in names(b, "producers"))


def _payload(i: int) -> bytes:
    return b"\xfa\x0a" + i.to_bytes(10, "little")  # one compact TLV (type 250)


async def _publish_and_consume(sock_a: Path, sock_b: Path) -> list[tuple[int, bytes]]:
    got: list[tuple[int, bytes]] = []
    async with RelayConsumer.connect("market_data", str(sock_b), from_seq=1, raw=True, name="walkthrough-b") as c:
        async with RelayProducer.connect("market_data", str(sock_a), source_id=77, name="walkthrough-a") as prod:
            for i in range(1, N + 1):
                await prod.publish_payload(_payload(i))
            await prod.flush()
        with trio.fail_after(60):
            async for frames in c.batches():
                for f in frames:
                    got.append((_seq(f), _body(f)))
                if len(got) >= N:
                    break
        with trio.move_on_after(1.0):  # nothing more may come: each message exactly once
            async for frames in c.batches():
                got.extend((_seq(f), _body(f)) for f in frames)
    return got


def _seq(frame: bytes) -> int:
    from protocol.header import read_domain_seq

    return read_domain_seq(frame)


def _body(frame: bytes) -> bytes:
    from protocol.header import HEADER_SIZE

    return bytes(frame[HEADER_SIZE:])


def test_walkthrough_systemd_step(tmp_path: Path) -> None:
    """Step 5: the deployment entry it shows becomes a unit with the lines it says, and the
    password file's path is in no command line."""
    from tools.deployment import parse_deployment
    from tools.systemd import generate

    step = _step(_section(), "Under systemd")
    m = re.search(r"`args = (\[.*?\])`", step, re.S)
    assert m, "step 5 shows a deployment entry's args"
    args = json.loads(" ".join(m.group(1).split()))
    claims = [s for s in re.findall(r"`([^`]+)`", step) if s.startswith(("LoadCredential=", "--nats-auth-file %d"))]
    assert len(claims) == 2, claims
    dep = parse_deployment({
        "deployment": {"run_dir": str(tmp_path / "run"), "data_dir": str(tmp_path / "data"), "user": "alphapulse"},
        "process": [{"name": "bridge-out-market_data", "args": args}],
    })
    generate(dep, tmp_path / "units", python="/usr/bin/python3")
    unit = (tmp_path / "units" / "alphapulse-bridge-out-market_data.service").read_text()
    for claim in claims:
        assert claim in unit
    execs = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert execs and all(args[args.index("--nats-auth-file") + 1] not in line for line in execs)
