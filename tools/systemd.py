"""``alphapulse systemd --config FILE --out DIR``: systemd units from a deployment file.

One ``alphapulse-<process>.service`` per process and an ``alphapulse.target``
grouping them. Dependencies become ``Requires=``/``After=``; every unit runs as
the deployment's dedicated user with a hardened sandbox (``ProtectSystem=strict``,
``NoNewPrivileges``, private /tmp, read-write access only to the deployment's
run, data and log directories) and is restarted on failure. Relay sockets live
in the deployment's run directory, which must be under ``/run``: each unit names
it as its ``RuntimeDirectory=`` (preserved across unit restarts so a relay
restart does not pull the directory from under the other processes).

A process's ``env`` never goes into its unit (unit files are world-readable, 0644, and end up in
``systemctl show``): it is written to ``alphapulse-<process>.env`` beside the units, mode 0600
from the first byte, and the unit names it with ``EnvironmentFile=`` (read by systemd as root
before the service drops to its user). A ``--nats-auth-file`` becomes ``LoadCredential=``.

A process with a niceness (``nice`` in the deployment, by default its kind's: ``tools/deployment.py``)
gets ``Nice=`` and the matching ``CPUWeight=`` (:func:`cpu_weight`: the kernel's weight for that
niceness on the 100 = nice 0 scale, so nice 10 is ``CPUWeight=11``); a process at 0 gets neither. Both,
because each unit is its own control group: once the cgroup-v2 ``cpu`` controller is on in
``system.slice`` (any unit there with a CPU setting turns it on for all its siblings), CPU time is split
between the units by their weights and a niceness only orders the threads inside one unit, so ``Nice=``
alone would stop ordering our processes against each other. Our ``CPUWeight=`` turns the controller
on for the slice itself, and the units left at 0 keep the default 100 (nice 0's weight). These are
system units (run as the deployment's user, installed under ``/etc/systemd/system``); under a user
manager the same lines need the ``cpu`` controller delegated to ``user@.service`` (Debian 12's default).

Units that cannot work as generated are refused with the reason
(:func:`sandbox_problems`): a path a unit names under ``/tmp`` or ``/var/tmp``
(``PrivateTmp=yes`` gives each unit its own empty one), a directory it writes
under ``/home`` (``ProtectHome=read-only``), a run directory outside ``/run``.
Beside the units it writes ``alphapulse.sysusers`` (the user, for
``systemd-sysusers``) and ``alphapulse.tmpfiles`` (the data and log directories
owned by that user, for ``systemd-tmpfiles --create``); the README's
"Production with systemd" section lists the install steps.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from runtime.files import write_private

from .deployment import Deployment, ProcessSpec, load_from_args

REPO_ROOT = Path(__file__).resolve().parent.parent


def unit_name(process: str) -> str:
    return f"alphapulse-{process}.service"


AUTH_FLAG = "--nats-auth-file"
CREDENTIAL = "nats-auth"


def _credentials(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """``args`` with a ``--nats-auth-file PATH`` pointed at systemd's credentials directory, and
    the ``LoadCredential=`` lines that hand the file to the service."""
    out: list[str] = []
    creds: list[str] = []
    it = iter(args)
    for a in it:
        if a == AUTH_FLAG or a.startswith(AUTH_FLAG + "="):
            path = a.partition("=")[2] if "=" in a else next(it, "")
            creds.append(f"LoadCredential={CREDENTIAL}:{path}")
            out += [AUTH_FLAG, f"%d/{CREDENTIAL}"]
        else:
            out.append(a)
    return out, creds


# the kernel's CFS load weight of niceness 0..19 (kernel/sched/core.c, sched_prio_to_weight); nice 0 is 1024
_NICE_WEIGHTS = (1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23, 18, 15)


def cpu_weight(nice: int) -> int:
    """``CPUWeight=`` of a unit whose processes run at niceness ``nice``: the kernel's weight for it on the
    ``cpu.weight`` scale, where the default 100 is nice 0's (the kernel converts ``cpu.weight`` back to a load
    weight as weight x 1024 / 100, so 11 is 113 against nice 10's 110)."""
    return max(1, round(100 * _NICE_WEIGHTS[nice] / 1024))


def env_file_name(process: str) -> str:
    return f"alphapulse-{process}.env"


def env_file(env: dict[str, str]) -> str:
    """systemd's ``EnvironmentFile=`` format: ``KEY="value"`` lines, quotes and backslashes escaped."""
    def quote(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return "".join(f"{k}={quote(v)}\n" for k, v in sorted(env.items()))


PRIVATE_TMP = ("/tmp", "/var/tmp")


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def runtime_directory(dep: Deployment) -> str | None:
    """The run directory relative to ``/run`` (``RuntimeDirectory=``), None when it is not under /run."""
    run = str(Path(dep.run_dir))
    return run[len("/run/"):] if _under(run, "/run") and run != "/run" else None


def sandbox_problems(dep: Deployment, *, python: str, workdir: str) -> list[str]:
    """Every path a unit names checked against the sandbox the units set: what would make a unit
    fail (or run against an empty directory) as generated."""
    problems: list[str] = []
    if runtime_directory(dep) is None:
        problems.append(f"run_dir {dep.run_dir} is not under /run: the relay sockets belong in the units' "
                        "RuntimeDirectory (e.g. run_dir = \"/run/alphapulse\")")
    named: list[tuple[str, str]] = [("the interpreter", python), ("the working directory", workdir),
                                    ("run_dir", dep.run_dir), ("data_dir", dep.data_dir)]
    if dep.log_dir:
        named.append(("log_dir", dep.log_dir))
    for spec in dep.processes:
        named += [(f"process {spec.name!r} argument", a) for a in spec.args if a.startswith("/")]
    for what, path in named:
        root = next((t for t in PRIVATE_TMP if _under(path, t)), None)
        if root is not None:
            problems.append(f"{what} {path} is under {root}, which PrivateTmp=yes replaces with an empty "
                            "directory in every unit")
    for what, path in (("data_dir", dep.data_dir), ("log_dir", dep.log_dir)):
        if path and (_under(path, "/home") or _under(path, "/root")):
            problems.append(f"{what} {path} is under a home directory, read-only with ProtectHome=read-only")
    if not dep.user:
        problems.append("the deployment names no user for the units (deployment.user)")
    return problems


def sysusers(dep: Deployment) -> str:
    """``systemd-sysusers`` configuration: the deployment's user and group, home in its data dir."""
    return f'u {dep.user} - "AlphaPulse deployment {dep.name}" {dep.data_dir} -\n'


def tmpfiles(dep: Deployment) -> str:
    """``systemd-tmpfiles`` configuration: the data and log directories, owned by the user, 0750."""
    dirs = [d for d in (dep.data_dir, dep.log_dir) if d]
    return "".join(f"d {d} 0750 {dep.user} {dep.user} -\n" for d in dirs)


def service_unit(dep: Deployment, spec: ProcessSpec, *, python: str, workdir: str,
                 env_dir: str | None = None) -> str:
    """The unit of ``spec``; its ``env`` is named by ``EnvironmentFile=<env_dir>/<process>.env``
    (``env_dir``: where :func:`generate` wrote that file), never written into the unit."""
    deps = " ".join(unit_name(a) for a in spec.after)
    rw = " ".join(sorted({p for p in (dep.run_dir, dep.data_dir, dep.log_dir) if p}))
    args, creds = _credentials(spec.args)
    exec_start = " ".join(shlex.quote(a) for a in (python, "-m", "tools.cli", *args))
    lines = [
        "[Unit]",
        f"Description=AlphaPulse {spec.name}",
        "PartOf=alphapulse.target",
    ]
    if deps:
        lines += [f"Requires={deps}", f"After={deps}"]
    if spec.args[0] == "bridge":  # talks to NATS on other hosts
        lines += ["Wants=network-online.target", "After=network-online.target"]
    lines += [
        "",
        "[Service]",
        "Type=simple",
        f"User={dep.user}",
        f"Group={dep.user}",
        f"WorkingDirectory={workdir}",
        f"ExecStart={exec_start}",
        # `systemctl reload`: every process main reloads what it safely can on SIGHUP (runtime.reload)
        *([] if spec.oneshot else ["ExecReload=/bin/kill -HUP $MAINPID"]),
        *creds,
        *([f"Nice={spec.niceness}", f"CPUWeight={cpu_weight(spec.niceness)}"] if spec.niceness else []),
        f"Restart={'on-failure' if spec.oneshot else 'always'}",
        "RestartSec=2",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=15",
        *([f"RuntimeDirectory={runtime_directory(dep)}", "RuntimeDirectoryMode=0700",
           "RuntimeDirectoryPreserve=yes"] if runtime_directory(dep) else []),
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        f"ReadWritePaths={rw}",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if spec.env:
        lines.append(f"EnvironmentFile={Path(env_dir or '.').resolve() / env_file_name(spec.name)}")
    lines += ["", "[Install]", "WantedBy=alphapulse.target", ""]
    return "\n".join(lines)


def target_unit(dep: Deployment) -> str:
    wants = " ".join(unit_name(p.name) for p in dep.processes)
    return "\n".join([
        "[Unit]",
        f"Description=AlphaPulse deployment {dep.name} (all processes)",
        f"Wants={wants}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def generate(dep: Deployment, out: Path, *, python: str | None = None, workdir: str | None = None) -> list[Path]:
    """Write the units (returned) and each process's 0600 environment file (not returned) to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    python = python or sys.executable
    workdir = workdir or str(REPO_ROOT)
    written = []
    for spec in dep.processes:
        path = out / unit_name(spec.name)
        path.write_text(service_unit(dep, spec, python=python, workdir=workdir, env_dir=str(out)))
        written.append(path)
        if spec.env:  # the values may be secrets: 0600 from the first byte, never in the unit
            env_path = out / env_file_name(spec.name)
            write_private(env_path, env_file(spec.env))
    path = out / "alphapulse.target"
    path.write_text(target_unit(dep))
    written.append(path)
    if dep.user:
        for name, text in (("alphapulse.sysusers", sysusers(dep)), ("alphapulse.tmpfiles", tmpfiles(dep))):
            (out / name).write_text(text)
    return written


def main(argv: list[str]) -> int:
    def options(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--out", required=True, help="directory for the unit files")
        ap.add_argument("--python", help="interpreter for ExecStart (default: this one)")

    args, dep = load_from_args("alphapulse systemd", argv, description=__doc__, options=options)
    python = args.python or sys.executable
    problems = sandbox_problems(dep, python=python, workdir=str(REPO_ROOT))
    if problems:
        for p in problems:
            print(f"alphapulse systemd: {p}", file=sys.stderr)
        print("alphapulse systemd: no units written; these units would not run as generated", file=sys.stderr)
        return 2
    for path in generate(dep, Path(args.out), python=python):
        print(path)
    for spec in dep.processes:
        if spec.env:
            print(Path(args.out) / env_file_name(spec.name))
    for name in ("alphapulse.sysusers", "alphapulse.tmpfiles"):
        print(Path(args.out) / name)
    return 0
