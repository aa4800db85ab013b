"""The SSH transport: the system `ssh` and `rsync` binaries, one authentication per command.

A `Connection` opens (or reuses) an SSH ControlMaster before the first remote call, so every later
`ssh` and `rsync` of the same command multiplexes over it: one authentication per command even on
clusters with MFA. When the user's ssh config already enables ControlMaster with a ControlPath,
that socket is used; otherwise a private one under `$USR_SSH_CONTROL_DIR` (default
`/tmp/usr-ssh-<uid>`) is created with ControlPersist=60s, so `diff` then `pull` also share it.

Host keys: unknown hosts are refused (`StrictHostKeyChecking=yes`) unless the user's ssh config
sets another policy explicitly. Remote scripts are POSIX sh sent on stdin (`sh -s -- ARGS`); the
arguments are validated and shell-quoted.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...core.errors import RemoteError
from .remotes import RemoteProfile
from .transport import Result, check_args

CONTROL_ENV = "USR_SSH_CONTROL_DIR"
CONNECT_TIMEOUT = int(os.environ.get("USR_SSH_CONNECT_TIMEOUT", "15"))


def _require_binary(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pkg = "openssh-client" if name == "ssh" else name
        raise RemoteError(f"`{name}` is not installed on this machine", hint=f"install it (e.g. `apt-get install {pkg}`)")
    return path


def classify_ssh_failure(stderr: str, profile: RemoteProfile) -> RemoteError:
    """Turn ssh's stderr into one sentence and a fix."""
    text = stderr.strip().splitlines()
    last = text[-1] if text else "no error message"
    low = stderr.lower()
    where = f"remote {profile.name!r} ({profile.destination})"
    if "host key verification failed" in low or "no matching host key" in low or "remote host identification has changed" in low:
        return RemoteError(f"{where}: the host key is unknown or has changed; refusing to connect",
                           hint=f"verify the key and add it to known_hosts (e.g. `ssh {profile.destination}` once and accept it, "
                                "or set known_hosts in the profile)")
    if "permission denied" in low or "too many authentication failures" in low:
        return RemoteError(f"{where}: authentication failed ({last})",
                           hint="check user and identity_file in `usr remotes show`, or set batch_mode: false for MFA logins")
    if "could not resolve" in low or "name or service not known" in low:
        return RemoteError(f"{where}: host name does not resolve ({last})", hint="check host in the profile or your ~/.ssh/config alias")
    if "connection refused" in low or "timed out" in low or "no route" in low or "network is unreachable" in low or "connection closed" in low \
            or "broken pipe" in low or "connection reset" in low or "timeout" in low:
        return RemoteError(f"{where} is unreachable or the connection dropped ({last})",
                           hint="check the network/VPN and port, then rerun the same command (it resumes)")
    return RemoteError(f"{where}: ssh failed ({last})", hint="run `usr remotes doctor --remote " + profile.name + "`")


class Connection:
    """SSH/rsync access to one remote profile for the duration of one command."""

    def __init__(self, profile: RemoteProfile):
        self.profile = profile
        self._opts: list[str] | None = None
        self._master_checked = False
        self.control_path = ""
        self.persist: str | None = None
        self.calls = 0  # remote commands run (for tests and the audit)
        self.bytes_in = 0  # bytes received from remote scripts (inventory etc.; rsync counted separately)

    # -- options ---------------------------------------------------------------------------
    def _base_opts(self) -> list[str]:
        p = self.profile
        opts: list[str] = []
        if p.ssh_config:
            opts += ["-F", os.path.expanduser(p.ssh_config)]
        for o in p.ssh_options:  # user options first: for ssh the first value obtained wins
            opts += ["-o", o]
        if p.port:
            opts += ["-p", str(p.port)]
        if p.identity_file:
            opts += ["-i", os.path.expanduser(p.identity_file), "-o", "IdentitiesOnly=yes"]
        if p.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={os.path.expanduser(p.known_hosts)}"]
        if p.batch_mode:
            opts += ["-o", "BatchMode=yes"]
        opts += ["-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"]
        return opts

    def _effective(self, opts: list[str]) -> dict[str, str]:
        """`ssh -G`: the configuration ssh would use (no connection is made)."""
        try:
            res = subprocess.run([_require_binary("ssh"), "-G", *opts, self.profile.destination], capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            return {}
        conf: dict[str, str] = {}
        for line in res.stdout.splitlines():
            k, _, v = line.partition(" ")
            conf.setdefault(k.lower(), v.strip())
        return conf

    def ssh_opts(self) -> list[str]:
        if self._opts is not None:
            return self._opts
        opts = self._base_opts()
        conf = self._effective(opts)
        if conf.get("stricthostkeychecking", "ask") in ("ask", "true"):
            opts += ["-o", "StrictHostKeyChecking=yes"]
        cm = conf.get("controlmaster", "false")
        cp = conf.get("controlpath", "none")
        if cm in ("false", "no") or cp in ("", "none"):
            cdir = Path(os.environ.get(CONTROL_ENV) or f"/tmp/usr-ssh-{os.getuid()}")
            cdir.mkdir(parents=True, exist_ok=True)
            os.chmod(cdir, 0o700)
            self.control_path = str(cdir / "%C")
            self.persist = "60"
        else:
            self.control_path = cp
            persist = conf.get("controlpersist", "no")
            self.persist = None if persist in ("no", "false", "") else persist
        opts += ["-o", f"ControlPath={self.control_path}"]
        self._opts = opts
        return opts

    def ssh_command(self) -> list[str]:
        """`ssh OPTIONS` (without the destination), multiplexed over the master."""
        return [_require_binary("ssh"), *self.ssh_opts(), "-o", "ControlMaster=no"]

    def rsync_rsh(self) -> str:
        return " ".join(shlex.quote(a) for a in self.ssh_command())

    # -- the master ------------------------------------------------------------------------
    def ensure_master(self) -> None:
        """Authenticate once: start a background ControlMaster unless a live one exists."""
        if self._master_checked:
            return
        opts = self.ssh_opts()
        ssh = _require_binary("ssh")
        check = subprocess.run([ssh, *opts, "-O", "check", self.profile.destination], capture_output=True, text=True, timeout=20)
        if check.returncode != 0:
            persist = self.persist or "60"
            with tempfile.TemporaryFile() as errf:
                try:
                    res = subprocess.run([ssh, *opts, "-o", "ControlMaster=yes", "-o", f"ControlPersist={persist}", "-f", "-N",
                                          self.profile.destination],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
                                         timeout=CONNECT_TIMEOUT + 120 if not self.profile.batch_mode else CONNECT_TIMEOUT + 30)
                except subprocess.TimeoutExpired:
                    raise RemoteError(f"remote {self.profile.name!r}: connecting timed out",
                                      hint="check the network/VPN, then rerun") from None
                errf.seek(0)
                err = errf.read().decode(errors="replace")
            if res.returncode != 0:
                raise classify_ssh_failure(err, self.profile)
        self._master_checked = True

    def close_master(self) -> None:
        """Stop the master (tests use it; commands leave it for ControlPersist)."""
        if self._opts is None:
            return
        subprocess.run([_require_binary("ssh"), *self._opts, "-O", "exit", self.profile.destination],
                       capture_output=True, timeout=20)

    # -- remote commands -------------------------------------------------------------------
    def run_script(self, script: str, args: list[str], *, timeout: float = 600.0, check: bool = True) -> Result:
        """Run a POSIX sh `script` on the remote with positional `args` (validated, quoted)."""
        check_args(args)
        self.ensure_master()
        remote_cmd = "sh -s --" + "".join(" " + shlex.quote(a) for a in args)
        argv = [*self.ssh_command(), self.profile.destination, remote_cmd]
        self.calls += 1
        try:
            res = subprocess.run(argv, input=script.encode(), capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"remote {self.profile.name!r}: command timed out after {timeout:.0f}s",
                              hint="check the connection, then rerun the same command") from None
        self.bytes_in += len(res.stdout)
        err = res.stderr.decode(errors="replace")
        if res.returncode == 255:
            raise classify_ssh_failure(err, self.profile)
        if check and res.returncode != 0:
            raise RemoteError(f"remote {self.profile.name!r}: remote command failed with exit {res.returncode} ({err.strip()[-300:] or 'no message'})",
                              hint=f"run `usr remotes doctor --remote {self.profile.name}`")
        return Result(res.returncode, res.stdout, err)

    def rsync_host(self) -> tuple[str | None, str | None]:
        """rsync reaches the remote as `destination:` through the multiplexed ssh command."""
        self.ensure_master()
        return self.profile.destination, self.rsync_rsh()

    def rsync_failure(self, rc: int, stderr: str) -> Exception:
        """A dropped link becomes "interrupted, rerun"; anything else names rsync's own message."""
        if rc == 255 or rc in (10, 12, 30, 35) or "connection" in stderr.lower():
            e = classify_ssh_failure(stderr or "connection closed", self.profile)
            return RemoteError(f"transfer with remote {self.profile.name!r} was interrupted (rsync exit {rc}): {e.message}",
                               hint="both copies are still valid; rerun the same command to resume")
        return RemoteError(f"rsync with remote {self.profile.name!r} failed with exit {rc} ({stderr.strip()[-300:]})",
                           hint="rerun the same command; if it persists run `usr remotes doctor`")
