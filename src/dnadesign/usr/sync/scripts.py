"""POSIX sh scripts run where an SSH remote's dataset lives (no dnadesign needed there).

Tools used: sh, find, stat, sha256sum, flock, mv, head, tail, wc, grep, sed, awk, base64.
Each script is sent on stdin to `sh -s -- ARGS`; argument 1 is a random token that frames the
output sections (`--TOKEN name\\n<content>\\n`), so file content can never be mistaken for framing.
Handled outcomes are reported in sections (`status` ...) with exit code 0; a non-zero exit means
the script itself could not run. Data sent to the remote (a manifest, meta.md, event lines) travels
base64-encoded inside here-documents, so it arrives byte for byte.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence

from .eventlog import WINDOW
from .side import CommitRequest

_PRELUDE = r"""set -u
T=$1
sec() { printf -- '--%s %s\n' "$T" "$1"; }
end() { printf '\n'; }
B=$2
case $B in "~") B=$HOME;; "~/"*) B=$HOME/${B#"~/"};; esac
"""

# Args: 1 token, 2 base_dir, 3 dataset id, 4 mark size, 5 mark head sha256, 6 mark lead sha256, 7 window,
# 8 prefix sha256 or -. Events, mark mode (8 = -): the log is read from the mark on when the windows before it
# still hash to what the mark remembers (sections events_head/events_lead/events_tail, events_from = the
# mark); otherwise from byte 0 (events_from = 0). Prefix mode (no checkpoint yet; 4 = the caller's own log
# size, 8 = its sha256): when this log starts with exactly those bytes only the rest is sent; when this log
# is shorter, only its size and sha256 are sent (events_whole_sha: the caller checks whether it is a prefix
# of its own). Only `head -c`/`tail -c +N` are used, which seek: cost follows the bytes sent.
INVENTORY = _PRELUDE + r"""
sec tools; for c in rsync flock sha256sum mv base64 awk; do command -v "$c" >/dev/null 2>&1 && printf '%s ' "$c"; done; end
if [ -d "$B" ]; then sec base; (cd "$B" && pwd -P) | tr -d '\n'; end; fi
D=$B/$3
if [ ! -d "$D" ]; then sec absent; end; exit 0; fi
cd "$D" || exit 70
sec dir; pwd -P | tr -d '\n'; end
if [ -f manifest.json ]; then sec manifest; cat manifest.json; end; fi
if [ -f meta.md ]; then sec meta; cat meta.md; end; fi
if [ -f .events.log ]; then
  sz=$(wc -c < .events.log | tr -d ' ')
  sec events_size; printf %s "$sz"; end
  M=$4; W=$7; h=0; l=0; mode=mark
  if [ "$M" -gt 0 ]; then
    if [ "$8" != "-" ]; then
      mode=prefix
      if [ "$sz" -lt "$M" ]; then
        sec events_whole_sha; head -c "$sz" .events.log | sha256sum | cut -c1-64 | tr -d '\n'; end
        M=-1
      elif [ "$(head -c "$M" .events.log | sha256sum | cut -c1-64)" != "$8" ]; then M=0
      fi
    elif [ "$sz" -lt "$M" ]; then M=0
    else
      h=$W; [ "$M" -lt "$h" ] && h=$M
      l=$((M - W)); [ "$l" -lt 0 ] && l=0
      hs=$(head -c "$h" .events.log | sha256sum | cut -c1-64)
      ls=$(tail -c +$((l + 1)) .events.log | head -c $((M - l)) | sha256sum | cut -c1-64)
      if [ "$ls" != "$6" ]; then M=0; elif [ "$M" -gt "$W" ] && [ "$hs" != "$5" ]; then M=0; fi
    fi
  fi
  if [ "$M" -ge 0 ]; then
    sec events_from; printf %s "$M"; end
    sec events_mode; printf %s "$mode"; end
    if [ "$M" -gt 0 ] && [ "$mode" = mark ]; then
      sec events_head; head -c "$h" .events.log; end
      sec events_lead; tail -c +$((l + 1)) .events.log | head -c $((M - l)); end
    fi
    sec events_tail; tail -c +$((M + 1)) .events.log | head -c $((sz - M)); end
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

# Args: 1 token, 2 base_dir, 3 dataset id. Stdin of the loop: "start end" byte spans of .events.log.
EVENT_SPANS = _PRELUDE + r"""
cd "$B/$3" || exit 70
while read -r s e; do
  [ -n "$e" ] || continue
  sec "span $s $e"; tail -c +$((s + 1)) .events.log | head -c $((e - s)); end
done <<'USR_SPANS_EOF'
"""

# Args: 1 token, 2 base_dir.
DOCTOR = _PRELUDE + r"""
for c in rsync flock sha256sum mv mkdir stat find head tail wc grep sed awk base64; do
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

# Args: 1 token, 2 base_dir, 3 dataset id, 4 expected manifest sha256 or -, 5 expected meta.md sha256 or -,
# 6 lock wait seconds, 7 events_seen. The lists and payloads are written by `commit_script`.
_COMMIT_BODY = r"""
S=.usr-sync/in
: > "$W.missing"; : > "$W.bad"; : > "$W.pre"
fail() { sec status; printf error; end; sec detail; printf '%s' "$1"; end; exit 0; }
matches() {  # matches KIND EXPECTED FILE: sha256 or byte size as expected
  if [ "$1" = hash ]; then [ "$(sha256sum < "$3" | cut -c1-64)" = "$2" ]; else [ "$(wc -c < "$3" | tr -d ' ')" = "$2" ]; fi
}
# staged data files are checked before the lock (a long hash must not block this dataset's writers)
while read -r k x r; do
  [ -n "$r" ] || continue
  [ -f "$S/$r" ] || continue
  if matches "$k" "$x" "$S/$r"; then printf '%s %s\n' "$(stat -c '%i %s %Y' "$S/$r")" "$r" >> "$W.pre"
  else printf '%s\n' "$r" >> "$W.bad"; rm -f -- "$S/$r"; fi
done < "$W.data"
if [ -s "$W.bad" ]; then sec status; printf verify_failed; end; sec missing; end; sec bad; cat "$W.bad"; end; exit 0; fi
exec 9>>.usr.lock
if ! flock -w "$6" 9; then sec status; printf lock_timeout; end; sec holder; cat .usr.lock 2>/dev/null; end; exit 0; fi
: > .usr.lock
printf '{"host": "%s", "pid": %s, "cmd": "usr sync commit", "since": "%s"}\n' "$(hostname 2>/dev/null || echo remote)" "$$" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> .usr.lock
trap 'rm -f "$W".*; : > .usr.lock' EXIT
exec 8>>.events.lock
if ! flock -w "$6" 8; then sec status; printf lock_timeout; end; sec holder; cat .events.lock 2>/dev/null; end; exit 0; fi
cur=-; [ -f manifest.json ] && cur=$(sha256sum < manifest.json | cut -c1-64)
curm=-; [ -f meta.md ] && curm=$(sha256sum < meta.md | cut -c1-64)
if [ "$cur" != "$4" ] || [ "$curm" != "$5" ]; then
  sec status; printf moved; end
  if [ -f manifest.json ]; then sec manifest; cat manifest.json; end; fi
  if [ -f meta.md ]; then sec meta; cat meta.md; end; fi
  exit 0
fi
while read -r h n; do
  [ -n "$n" ] || continue
  [ -e "_snapshots/$n" ] && continue
  if [ ! -f "$S/_snapshots/$n" ]; then printf '%s\n' "_snapshots/$n" >> "$W.missing"
  elif [ "$(sha256sum < "$S/_snapshots/$n" | cut -c1-64)" != "$h" ]; then printf '%s\n' "_snapshots/$n" >> "$W.bad"; rm -f -- "$S/_snapshots/$n"; fi
done < "$W.snaps"
while read -r h r; do
  [ -n "$r" ] || continue
  if [ ! -f "$S/$r" ]; then printf '%s\n' "$r" >> "$W.missing"
  elif [ "$(sha256sum < "$S/$r" | cut -c1-64)" != "$h" ]; then printf '%s\n' "$r" >> "$W.bad"; rm -f -- "$S/$r"; fi
done < "$W.aux"
while read -r k x r; do
  [ -n "$r" ] || continue
  known=""
  if [ -f "$S/$r" ]; then
    grep -qxF "$(stat -c '%i %s %Y' "$S/$r") $r" "$W.pre" && known=y   # still the very file checked above
    mkdir -p "$(dirname -- "$r")" && mv -f -- "$S/$r" "$r" || fail "cannot move $r into place"
  fi
  if [ ! -f "$r" ]; then printf '%s\n' "$r" >> "$W.missing"
  elif [ -z "$known" ] && ! matches "$k" "$x" "$r"; then printf '%s\n' "$r" >> "$W.bad"; rm -f -- "$r"; fi
done < "$W.data"
if [ -s "$W.missing" ] || [ -s "$W.bad" ]; then
  sec status; printf verify_failed; end
  sec missing; cat "$W.missing"; end
  sec bad; cat "$W.bad"; end
  exit 0
fi
while read -r h n; do
  [ -n "$n" ] || continue
  [ -e "_snapshots/$n" ] || { mkdir -p _snapshots && mv -f -- "$S/_snapshots/$n" "_snapshots/$n"; } || fail "cannot install snapshot $n"
done < "$W.snaps"
while read -r h r; do
  [ -n "$r" ] || continue
  mkdir -p "$(dirname -- "$r")" && mv -f -- "$S/$r" "$r" || fail "cannot install $r"
done < "$W.aux"
if [ -f "$W.meta" ]; then sync "$W.meta" 2>/dev/null; mv -f "$W.meta" meta.md || fail "cannot replace meta.md"; fi
if [ -f "$W.man" ]; then sync "$W.man" 2>/dev/null; mv -f "$W.man" manifest.json || fail "cannot replace manifest.json"; sync . 2>/dev/null; fi
n=0
if [ -s "$W.ev" ]; then
  now=0; [ -f .events.log ] && now=$(wc -c < .events.log | tr -d ' ')
  if [ "$now" -gt "$7" ]; then
    tail -c +$(($7 + 1)) .events.log | grep -o '"event_id"[[:space:]]*:[[:space:]]*"[^"]*"' | sed 's/.*:[[:space:]]*"//; s/"$//' > "$W.have"
    awk -v H="$W.have" -v I="$W.ids" 'FILENAME == H { have[$0] = 1; next } FILENAME == I { id[FNR] = $0; next } !(id[FNR] in have)' \
      "$W.have" "$W.ids" "$W.ev" > "$W.ev2" && mv -f "$W.ev2" "$W.ev"
  fi
  if [ -s "$W.ev" ]; then
    if [ -s .events.log ] && [ "$(tail -c 1 .events.log | wc -l | tr -d ' ')" = 0 ]; then printf '\n' >> .events.log; fi
    cat "$W.ev" >> .events.log || fail "cannot append to .events.log"
    sync .events.log 2>/dev/null
    n=$(wc -l < "$W.ev" | tr -d ' ')
  fi
fi
sec status; printf ok; end
sec events_appended; printf %s "$n"; end
"""


def token() -> str:
    """A random framing token for one script run."""
    return "USR" + secrets.token_hex(8)


def _b64_heredoc(path_expr: str, data: bytes) -> str:
    delim = "USR_EOF_" + secrets.token_hex(8)
    return f"base64 -d > {path_expr} <<'{delim}' || exit 70\n{base64.encodebytes(data).decode()}{delim}\n"


def _lines_heredoc(path_expr: str, lines: Sequence[str]) -> str:
    delim = "USR_EOF_" + secrets.token_hex(8)
    body = "".join(ln + "\n" for ln in lines)
    return f"cat > {path_expr} <<'{delim}' || exit 70\n{body}{delim}\n"


def commit_script(req: CommitRequest, event_ids: Sequence[str]) -> str:
    """The commit of one `CommitRequest`, run as ONE remote call (args: see `_COMMIT_BODY`).

    `event_ids` are the keys of `req.events`' lines, in order (used to skip lines another writer
    appended meanwhile). Outcome sections: `status` ok | moved (+ manifest, meta) | verify_failed
    (+ missing, bad) | lock_timeout (+ holder) | error (+ detail); `events_appended` on ok.
    """
    parts = [_PRELUDE, r"""D=$B/$3
mkdir -p "$D/.usr-sync/in" && cd "$D" || { sec status; printf error; end; sec detail; printf 'cannot create or enter %s' "$D"; end; exit 0; }
W=.usr-sync/commit.$$
trap 'rm -f "$W".*' EXIT
"""]
    parts.append(_lines_heredoc('"$W.data"', [f"{c.kind} {c.expected} {c.file}" for c in req.data]))
    parts.append(_lines_heredoc('"$W.snaps"', [f"{h} {n}" for n, h in req.snapshots]))
    parts.append(_lines_heredoc('"$W.aux"', [f"{h} {r}" for r, h in req.aux]))
    if req.events:
        parts.append(_b64_heredoc('"$W.ev"', req.events))
        parts.append(_lines_heredoc('"$W.ids"', list(event_ids)))
    if req.meta is not None:
        parts.append(_b64_heredoc('"$W.meta"', req.meta))
    if req.manifest is not None:
        parts.append(_b64_heredoc('"$W.man"', req.manifest))
    parts.append(_COMMIT_BODY)
    return "".join(parts)


def commit_args(tok: str, base_dir: str, dataset_id: str, req: CommitRequest) -> list[str]:
    return [tok, base_dir, dataset_id, req.expect_manifest, req.expect_meta, str(req.lock_wait), str(req.events_seen)]


def inventory_args(tok: str, base_dir: str, dataset_id: str, size: int, head_sha: str, lead_sha: str, prefix_sha: str = "-") -> list[str]:
    return [tok, base_dir, dataset_id, str(size), head_sha, lead_sha, str(WINDOW), prefix_sha]


def spans_script(spans: Sequence[tuple[int, int]]) -> str:
    """EVENT_SPANS with its span list (closes the here-document)."""
    return EVENT_SPANS + "".join(f"{s} {e}\n" for s, e in spans) + "USR_SPANS_EOF\n"


def parse_sections(data: bytes, tok: str) -> dict[str, bytes]:
    """Split framed output into {section name: content} (one copy of each body, however large)."""
    out: dict[str, bytes] = {}
    marker = f"--{tok} ".encode()
    pos = data.find(marker)
    while pos != -1:
        nl = data.find(b"\n", pos)
        if nl == -1:
            out[data[pos + len(marker):].decode(errors="replace").strip()] = b""
            break
        nxt = data.find(marker, nl + 1)
        end = len(data) if nxt == -1 else nxt
        if end > nl + 1 and data[end - 1:end] == b"\n":
            end -= 1
        out[data[pos + len(marker):nl].decode(errors="replace").strip()] = data[nl + 1:end]
        pos = nxt
    return out
