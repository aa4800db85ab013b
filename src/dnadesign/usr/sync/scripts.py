"""POSIX sh scripts run on the remote (no dnadesign needed there: sh, find, stat, sha256sum, flock, mv).

Each script is sent on stdin to `sh -s -- ARGS`. Output sections are framed by a random token
chosen per call: `--TOKEN name\\n<content>\\n`, so file content can never be mistaken for framing.
Data sent to the remote (a manifest, event lines, meta.md) travels inside quoted here-documents
whose delimiter is also random.
"""

from __future__ import annotations

import secrets

# Positional args: 1 base_dir, 2 dataset id, 3 local events size, 4 local events sha256, 5 token
_PRELUDE = r"""
set -u
T=$5
sec() { printf -- '--%s %s\n' "$T" "$1"; }
end() { printf '\n'; }
B=$1
case $B in "~") B=$HOME;; "~/"*) B=$HOME/${B#"~/"};; esac
"""

INVENTORY = _PRELUDE + r"""
sec tools; for c in rsync flock sha256sum mv python3; do command -v "$c" >/dev/null 2>&1 && printf '%s ' "$c"; done; end
if [ -d "$B" ]; then sec base; (cd "$B" && pwd -P) | tr -d '\n'; end; fi
D=$B/$2
if [ ! -d "$D" ]; then sec absent; end; exit 0; fi
cd "$D" || exit 70
sec dir; pwd -P | tr -d '\n'; end
if [ -f manifest.json ]; then sec manifest; cat manifest.json; end; fi
if [ -f meta.md ]; then sec meta; cat meta.md; end; fi
if [ -f .events.log ]; then
  sz=$(wc -c < .events.log | tr -d ' ')
  sec events_size; printf %s "$sz"; end
  sec events_sha; head -c "$sz" .events.log | sha256sum | cut -c1-64 | tr -d '\n'; end
  if [ "$3" -eq 0 ]; then
    sec events_full; head -c "$sz" .events.log; end
  elif [ "$sz" -ge "$3" ]; then
    p=$(head -c "$3" .events.log | sha256sum | cut -c1-64)
    if [ "$p" = "$4" ]; then sec events_tail; head -c "$sz" .events.log | tail -c +"$(($3 + 1))"; end
    else sec events_full; head -c "$sz" .events.log; end
    fi
  fi
fi
if [ -d _snapshots ]; then sec snapshots; find _snapshots -maxdepth 1 -type f -name '*.json' -exec sha256sum {} + 2>/dev/null; end; fi
sec files; find records _derived -type f -name '*.parquet' ! -path '*/.usr-partial/*' -exec stat -c '%s %n' {} + 2>/dev/null; end
AUX=$(find . \( -path ./records -o -path ./_derived -o -path ./_snapshots -o -path ./_index -o -path ./.usr-sync \
  -o -name .usr-partial \) -prune -o -type f ! -path ./manifest.json ! -path ./meta.md ! -path ./.events.log \
  ! -path ./.events.lock ! -path ./.usr.lock ! -name '.*.tmp' -print 2>/dev/null)
if [ -n "$AUX" ]; then
  sec aux_stat; printf '%s\n' "$AUX" | while IFS= read -r f; do stat -c '%s %Y %n' "$f"; done; end
  sec aux_sha; printf '%s\n' "$AUX" | while IFS= read -r f; do sha256sum "$f"; done; end
fi
"""

# Positional args: 1 base_dir, 2 dataset id, 3 byte count, 4 unused, 5 token
EVENTS_FETCH = _PRELUDE + r"""
cd "$B/$2" || exit 70
sec events_full; head -c "$3" .events.log; end
"""

# Positional args: 1 base_dir, 2 unused, 3 unused, 4 unused, 5 token
DOCTOR = _PRELUDE + r"""
for c in rsync flock sha256sum mv mkdir stat find; do
  if command -v "$c" >/dev/null 2>&1; then echo "tool $c ok"; else echo "tool $c missing"; fi
done
if command -v python3 >/dev/null 2>&1; then echo "tool python3 ok"; else echo "tool python3 missing"; fi
if [ -d "$B" ]; then echo "base exists"; else echo "base missing"; fi
if [ -d "$B" ] && t=$(mktemp "$B/.usr-doctor.XXXXXX" 2>/dev/null); then rm -f "$t"; echo "base writable"; else echo "base notwritable"; fi
if command -v flock >/dev/null 2>&1 && [ -d "$B" ]; then
  f=$(mktemp "$B/.usr-doctor-lock.XXXXXX" 2>/dev/null) || f=""
  if [ -n "$f" ] && flock -w 5 "$f" true 2>/dev/null; then echo "flock ok"; else echo "flock fail"; fi
  [ -n "$f" ] && rm -f "$f"
fi
echo "host $(hostname 2>/dev/null || uname -n)"
"""


def token() -> str:
    return "USR" + secrets.token_hex(8)


def heredoc(path_expr: str, data: bytes, append: bool = False) -> str:
    """`cat > path <<'DELIM' ... DELIM` writing exactly `data` (which must end with a newline or be empty)."""
    if not data:
        return f": > {path_expr}\n" if not append else ""
    text = data.decode()
    if not text.endswith("\n"):
        raise ValueError("here-document data must end with a newline")
    delim = "USR_EOF_" + secrets.token_hex(8)
    return f"cat {'>>' if append else '>'} {path_expr} <<'{delim}'\n{text}{delim}\n"


def commit_script(*, verify_hash: list[tuple[str, str]], verify_size: list[tuple[str, int]], manifest: bytes | None,
                  meta: bytes | None, events: bytes, snapshot_moves: list[str], aux_moves: list[str]) -> str:
    """The push commit, run as ONE remote call. Args: 1 base_dir, 2 dataset id, 3 expected manifest sha256 or -, 4 lock wait s.

    Steps: verify the uploaded files (sha256 or size), take `flock .usr.lock`, check the manifest is
    still the one we merged with (else print it and exit 66), install staged snapshots and aux
    files, replace meta.md and manifest.json (temp + mv), then append event lines under
    `flock .events.lock`. Exit codes: 65 verify failed, 66 manifest moved, 75 lock timeout.
    """
    lines = [r"""set -u
B=$1
case $B in "~") B=$HOME;; "~/"*) B=$HOME/${B#"~/"};; esac
D=$B/$2
mkdir -p "$D" && cd "$D" || { echo "USR-ERR cannot create or enter $D"; exit 70; }
mkdir -p .usr-sync/in || exit 70
W=.usr-sync/commit.$$
trap 'rm -f "$W".*' EXIT
"""]
    lines.append(heredoc('"$W.verify"', "".join(f"{h}  {f}\n" for f, h in verify_hash).encode()))
    lines.append(heredoc('"$W.sizes"', "".join(f"{n} {f}\n" for f, n in verify_size).encode()))
    lines.append(r"""
bad=""
if [ -s "$W.verify" ]; then
  if ! sha256sum -c --quiet "$W.verify" > "$W.vout" 2>&1; then
    bad=$(sed -n 's/^\(.*\): FAILED.*$/\1/p' "$W.vout")
  fi
fi
while read -r sz f; do
  [ -f "$f" ] && [ "$(wc -c < "$f" | tr -d ' ')" = "$sz" ] || bad="$bad
$f"
done < "$W.sizes"
if [ -n "$(printf %s "$bad" | tr -d '\n')" ]; then
  echo "USR-VERIFY-FAILED"
  printf '%s\n' "$bad" | while read -r f; do [ -n "$f" ] && { echo "$f"; rm -f -- "$f"; }; done
  exit 65
fi
exec 9>>.usr.lock
flock -w "$4" 9 || { echo "USR-LOCK-TIMEOUT"; cat .usr.lock 2>/dev/null; exit 75; }
if [ -f manifest.json ]; then cur=$(sha256sum manifest.json | cut -c1-64); else cur=-; fi
if [ "$cur" != "$3" ]; then echo "USR-MANIFEST-MOVED"; [ -f manifest.json ] && cat manifest.json; exit 66; fi
""")
    for name in snapshot_moves:
        lines.append(f"mkdir -p _snapshots && {{ [ -e '_snapshots/{name}' ] || mv -f '.usr-sync/in/_snapshots/{name}' '_snapshots/{name}'; }} || exit 70\n")
    for rel in aux_moves:
        parent = rel.rsplit("/", 1)[0] if "/" in rel else "."
        lines.append(f"mkdir -p '{parent}' && mv -f '.usr-sync/in/{rel}' '{rel}' || exit 70\n")
    if meta is not None:
        lines.append(heredoc('"$W.meta"', meta))
        lines.append('sync "$W.meta" 2>/dev/null; mv -f "$W.meta" meta.md || exit 70\n')
    if manifest is not None:
        lines.append(heredoc('"$W.man"', manifest))
        lines.append('sync "$W.man" 2>/dev/null; mv -f "$W.man" manifest.json || exit 70; sync . 2>/dev/null\n')
    if events:
        lines.append(r"""exec 8>>.events.lock
flock -w "$4" 8 || { echo "USR-LOCK-TIMEOUT"; exit 75; }
if [ -s .events.log ] && [ "$(tail -c 1 .events.log | wc -l | tr -d ' ')" = 0 ]; then printf '\n' >> .events.log; fi
""")
        lines.append(heredoc(".events.log", events, append=True))
        lines.append("sync .events.log 2>/dev/null\n")
    lines.append("echo USR-COMMIT-OK\n")
    return "".join(lines)


def parse_sections(data: bytes, tok: str) -> dict[str, bytes]:
    """Split framed output into {section name: content}."""
    out: dict[str, bytes] = {}
    marker = f"--{tok} ".encode()
    pieces = data.split(marker)
    for piece in pieces[1:]:
        name, _, body = piece.partition(b"\n")
        if body.endswith(b"\n"):
            body = body[:-1]
        out[name.decode().strip()] = body
    return out
