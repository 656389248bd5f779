"""``alphapulse systemd --config FILE --out DIR``: systemd units from a deployment file.

One ``alphapulse-<process>.service`` per process and an ``alphapulse.target``
grouping them. Dependencies become ``Requires=``/``After=``; every unit runs as
the deployment's dedicated user with a hardened sandbox (``ProtectSystem=strict``,
``NoNewPrivileges``, private /tmp, read-write access only to the deployment's
run, data and log directories) and is restarted on failure. Relay sockets live
in the shared runtime directory ``/run/alphapulse`` (``RuntimeDirectory=``,
preserved across unit restarts so a relay restart does not pull the directory
from under the other processes).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

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


def service_unit(dep: Deployment, spec: ProcessSpec, *, python: str, workdir: str) -> str:
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
        *creds,
        f"Restart={'on-failure' if spec.oneshot else 'always'}",
        "RestartSec=2",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=15",
        "RuntimeDirectory=alphapulse",
        "RuntimeDirectoryPreserve=yes",
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
    lines += [f"Environment={shlex.quote(f'{k}={v}')}" for k, v in sorted(spec.env.items())]
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
    out.mkdir(parents=True, exist_ok=True)
    python = python or sys.executable
    workdir = workdir or str(REPO_ROOT)
    written = []
    for spec in dep.processes:
        path = out / unit_name(spec.name)
        path.write_text(service_unit(dep, spec, python=python, workdir=workdir))
        written.append(path)
    path = out / "alphapulse.target"
    path.write_text(target_unit(dep))
    written.append(path)
    return written


def main(argv: list[str]) -> int:
    def options(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--out", required=True, help="directory for the unit files")
        ap.add_argument("--python", help="interpreter for ExecStart (default: this one)")

    args, dep = load_from_args("alphapulse systemd", argv, description=__doc__, options=options)
    for path in generate(dep, Path(args.out), python=args.python):
        print(path)
    return 0
