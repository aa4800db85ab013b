"""Real-component fixtures for `usr` sync: a throwaway sshd on 127.0.0.1 and a second host in a netns.

Import them into a test module (`from tests.usr.sync.sshd_fixtures import *`). Under CI=true a
missing component (sshd, rsync, flock, ip netns, root) FAILS the test; locally it skips with the
reason. Every daemon is stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_component as need

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

__all__ = ["NetnsHost", "SshHost", "SyncEnv", "netns_env", "netns_host", "sshd_host", "sync_env"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(host: str, port: int, timeout: float = 30.0) -> bool:
    """Readiness: True once `host:port` accepts a TCP connection (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class SshHost:
    host: str
    port: int
    dir: Path
    key: Path
    known_hosts: Path
    log: Path
    pid: int
    user: str

    def accepted(self) -> int:
        """Authentications so far (sshd LogLevel VERBOSE "Accepted publickey" lines)."""
        try:
            return self.log.read_text(errors="replace").count("Accepted publickey")
        except OSError:
            return 0


def _write_sshd(d: Path, host: str, port: int, extra: str = "") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_ed25519")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user_ed25519")], check=True)
    shutil.copy(d / "user_ed25519.pub", d / "authorized_keys")
    cfg = d / "sshd_config"
    cfg.write_text(f"""Port {port}
ListenAddress {host}
HostKey {d}/host_ed25519
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
LogLevel VERBOSE
MaxSessions 50
MaxStartups 50
{extra}
""")
    hostkey = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
    entry = f"[{host}]:{port}" if port != 22 else host
    (d / "known_hosts").write_text(f"{entry} {hostkey}\n")
    return cfg


@pytest.fixture(scope="session")
def sshd_host():
    """A real sshd on 127.0.0.1 with generated keys (hpc.md section 2)."""
    need(os.path.exists(SSHD), "sshd is not installed (apt-get install openssh-server)")
    need(shutil.which("ssh") is not None and shutil.which("rsync") is not None, "ssh/rsync are not installed")
    need(shutil.which("flock") is not None, "flock (util-linux) is not installed")
    d = Path(tempfile.mkdtemp(prefix="usrsshd-"))
    port = _free_port()
    cfg = _write_sshd(d, "127.0.0.1", port)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    subprocess.run([SSHD, "-t", "-f", str(cfg)], check=True)
    subprocess.run([SSHD, "-f", str(cfg), "-E", str(d / "sshd.log")], check=True)
    pidf = d / "sshd.pid"
    assert _wait_port("127.0.0.1", port), "sshd did not start"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (pidf.exists() and pidf.read_text().strip()):  # the pid file appears
        time.sleep(0.02)
    pid = int(pidf.read_text().strip())
    yield SshHost("127.0.0.1", port, d, d / "user_ed25519", d / "known_hosts", d / "sshd.log", pid, getpass.getuser())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    shutil.rmtree(d, ignore_errors=True)


@dataclass
class SyncEnv:
    local_root: Path
    remote_root: Path
    remotes_file: Path
    control_dir: Path
    host: SshHost
    name: str

    def profile(self, name: str | None = None, **extra) -> dict:
        """Write (or update) a remote profile in the test's remotes.yaml."""
        body = {"host": self.host.host, "port": self.host.port, "user": self.host.user, "identity_file": str(self.host.key),
                "known_hosts": str(self.host.known_hosts), "base_dir": str(self.remote_root)}
        body.update(extra)
        doc = yaml.safe_load(self.remotes_file.read_text()) if self.remotes_file.exists() else {"version": 1, "remotes": {}}
        doc["remotes"][name or self.name] = body
        self.remotes_file.write_text(yaml.safe_dump(doc))
        return body

    def close_masters(self) -> None:
        for sock in self.control_dir.glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True, timeout=10)


def _make_env(tmp_path: Path, monkeypatch, host: SshHost, name: str) -> SyncEnv:
    local_root = tmp_path / "local"
    remote_root = tmp_path / "remote"
    local_root.mkdir()
    remote_root.mkdir()
    control = Path(tempfile.mkdtemp(prefix="usc", dir="/tmp"))  # short: unix socket paths are limited to 108 bytes
    env = SyncEnv(local_root, remote_root, tmp_path / "remotes.yaml", control, host, name)
    monkeypatch.setenv("USR_REMOTES_PATH", str(env.remotes_file))
    monkeypatch.setenv("USR_SSH_CONTROL_DIR", str(control))
    monkeypatch.setenv("DNADESIGN_USR_ROOT", str(local_root))
    env.profile()
    return env


@pytest.fixture
def sync_env(tmp_path, monkeypatch, sshd_host):
    env = _make_env(tmp_path, monkeypatch, sshd_host, "hpc")
    yield env
    env.close_masters()
    shutil.rmtree(env.control_dir, ignore_errors=True)


# -- a second host in a network namespace (hpc.md section 3) -------------------------------------
@dataclass
class NetnsHost:
    ns: str
    veth: str
    ssh: SshHost
    proc: subprocess.Popen

    def link(self, up: bool) -> None:
        subprocess.run(["ip", "link", "set", self.veth, "up" if up else "down"], check=True)


@pytest.fixture
def netns_host():
    """An sshd in its own network namespace at a link-local 169.254.x.2, reached over a veth pair."""
    need(os.geteuid() == 0, "network namespaces need root")
    need(shutil.which("ip") is not None, "iproute2 is not installed")
    need(os.path.exists(SSHD), "sshd is not installed")
    tag = f"{os.getpid() % 10000}"
    ns, vl, vr = f"usrsync{tag}", f"vus{tag}l", f"vus{tag}r"
    octet = 100 + os.getpid() % 100
    loc, rem = f"169.254.{octet}.1", f"169.254.{octet}.2"
    r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    need(r.returncode == 0, f"cannot create a network namespace: {r.stderr.strip()}")
    proc = None
    d = Path(tempfile.mkdtemp(prefix="usrns-"))
    try:
        cmds = [["ip", "link", "add", vl, "type", "veth", "peer", "name", vr],
                ["ip", "link", "set", vr, "netns", ns],
                ["ip", "addr", "add", f"{loc}/30", "dev", vl], ["ip", "link", "set", vl, "up"],
                ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{rem}/30", "dev", vr],
                ["ip", "netns", "exec", ns, "ip", "link", "set", vr, "up"],
                ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]]
        for c in cmds:
            subprocess.run(c, check=True, capture_output=True)
        cfg = _write_sshd(d, rem, 22, extra="ClientAliveInterval 1\nClientAliveCountMax 3")
        os.makedirs("/run/sshd", exist_ok=True)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, SSHD, "-D", "-f", str(cfg), "-E", str(d / "sshd.log")])
        assert _wait_port(rem, 22), "sshd in the namespace did not start"
        yield NetnsHost(ns, vl, SshHost(rem, 22, d, d / "user_ed25519", d / "known_hosts", d / "sshd.log", proc.pid,
                                        getpass.getuser()), proc)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", vl], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def netns_env(tmp_path, monkeypatch, netns_host):
    env = _make_env(tmp_path, monkeypatch, netns_host.ssh, "far")
    env.profile(ssh_options=["ServerAliveInterval=1", "ServerAliveCountMax=2"])
    env.netns = netns_host  # type: ignore[attr-defined]
    yield env
    env.close_masters()
    shutil.rmtree(env.control_dir, ignore_errors=True)
