"""Evo2 through the optional `evo2` package, from a local checkpoint only (never downloaded at run time).

Install: `uv sync --extra evo2` (pulls torch, CUDA wheels and vortex; needs a CUDA GPU). The
checkpoint is a local `.pt` file (or a directory holding `<model>.pt`) named by `--checkpoint`
or `$DNADESIGN_EVO2_CHECKPOINT`. `preflight` reports every missing prerequisite before anything is
read or written, so a run that cannot work fails in one line and leaves the dataset untouched.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..core.errors import DnadesignError, InputError

CHECKPOINT_ENV = "DNADESIGN_EVO2_CHECKPOINT"
MODEL_ENV = "DNADESIGN_EVO2_MODEL"
DEFAULT_MODEL = "evo2_7b"
MODELS = ("evo2_7b", "evo2_40b", "evo2_7b_base", "evo2_40b_base", "evo2_1b_base")
# a mid-depth block whose output is the representation most work on Evo2 embeddings uses
DEFAULT_LAYER = {"evo2_7b": "blocks.28.mlp.l3", "evo2_7b_base": "blocks.28.mlp.l3", "evo2_40b": "blocks.40.mlp.l3",
                 "evo2_40b_base": "blocks.40.mlp.l3", "evo2_1b_base": "blocks.20.mlp.l3"}
INSTALL_HINT = "install it on a CUDA machine with `uv sync --extra evo2` (see docs/infer.md)"


class Evo2Unavailable(DnadesignError):
    """Evo2 cannot run here: the package, the checkpoint or the device is missing."""


@dataclass(frozen=True)
class Evo2Settings:
    model: str
    checkpoint: Path | None
    device: str

    @classmethod
    def resolve(cls, model: str | None, checkpoint: str | Path | None, device: str) -> Evo2Settings:
        """Settings from options, then `$DNADESIGN_EVO2_MODEL` / `$DNADESIGN_EVO2_CHECKPOINT`."""
        name = model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
        if name not in MODELS:
            raise InputError(f"unknown Evo2 model {name!r}", hint=f"use one of {', '.join(MODELS)}")
        ckpt = checkpoint or os.environ.get(CHECKPOINT_ENV) or None
        return cls(name, Path(ckpt).expanduser() if ckpt else None, device)

    def checkpoint_file(self) -> Path | None:
        """The `.pt` file: the path itself, or `<model>.pt` inside a directory."""
        if self.checkpoint is None:
            return None
        return self.checkpoint / f"{self.model}.pt" if self.checkpoint.is_dir() else self.checkpoint


def package_installed() -> bool:
    return importlib.util.find_spec("evo2") is not None


def cuda_visible() -> bool:
    """True when a CUDA device is usable: torch says so, or (without torch) an NVIDIA driver shows a GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if importlib.util.find_spec("torch") is not None:
        import torch

        return bool(torch.cuda.is_available())
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def problems(settings: Evo2Settings) -> list[str]:
    """What keeps Evo2 from running here, each with how to fix it (empty when it can run)."""
    out = []
    if not package_installed():
        out.append(f"the evo2 package is not installed: {INSTALL_HINT}")
    ckpt = settings.checkpoint_file()
    if ckpt is None:
        out.append(f"no checkpoint is configured: download {settings.model}.pt from https://huggingface.co/arcinstitute/{settings.model} "
                   f"once, then pass --checkpoint PATH or set {CHECKPOINT_ENV}")
    elif not ckpt.is_file():
        out.append(f"the checkpoint {ckpt} does not exist: check --checkpoint / {CHECKPOINT_ENV}")
    if settings.device.startswith("cuda") and not cuda_visible():
        out.append("no CUDA device is visible: run on a GPU node (check nvidia-smi and CUDA_VISIBLE_DEVICES)")
    return out


def preflight(preset: str, settings: Evo2Settings) -> None:
    """Raise one `Evo2Unavailable` line naming every missing prerequisite."""
    found = problems(settings)
    if found:
        raise Evo2Unavailable(f"{preset} cannot run here: " + "; ".join(found))


def token_log_likelihoods(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """log P(token[i+1] | tokens[..i]) for each position of one sequence (logits: length x vocab)."""
    z = logits[:-1].astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return z[np.arange(len(z)), tokens[1:]] - log_norm


class Evo2Model:
    """A loaded Evo2 network (imports torch and evo2 only when constructed)."""

    def __init__(self, settings: Evo2Settings):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the internet from here
        try:
            from evo2 import Evo2
        except ImportError as exc:
            raise Evo2Unavailable(f"the evo2 package cannot be imported ({exc})", hint=INSTALL_HINT) from None
        import torch

        self.torch = torch
        self.settings = settings
        try:
            self.net = Evo2(settings.model, local_path=str(settings.checkpoint_file()))
        except Exception as exc:  # noqa: BLE001  (a foreign loader: any failure becomes one line)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise Evo2Unavailable(f"could not load {settings.model} from {settings.checkpoint_file()}: {first}",
                                  hint="check that the checkpoint matches the model name (--evo2-model)") from None

    def _ids(self, seq: str):
        ids = self.net.tokenizer.tokenize(seq)
        return self.torch.tensor(ids, dtype=self.torch.int).unsqueeze(0).to(self.settings.device)

    def loglik(self, seq: str) -> tuple[float, float | None]:
        """(sum, mean) of the per-token log-likelihoods of one sequence."""
        ids = self._ids(seq)
        logits, _ = self.net(ids)
        per_token = token_log_likelihoods(logits[0].float().cpu().numpy(), ids[0].cpu().numpy())
        if len(per_token) == 0:
            return 0.0, None
        return float(per_token.sum()), float(per_token.mean())

    def embedding(self, seq: str, layer: str) -> np.ndarray:
        """Mean over positions of one layer's output."""
        _, emb = self.net(self._ids(seq), return_embeddings=True, layer_names=[layer])
        return emb[layer][0].float().mean(dim=0).cpu().numpy().astype(np.float32)


class Evo2LoglikScorer:
    """`evo2/extract_logits_ll`: log-likelihood of each sequence (sum and mean over tokens)."""

    def __init__(self, model: Evo2Model):
        self.model = model
        self.outputs: list[tuple[str, pa.DataType]] = [("ll_sum", pa.float64()), ("ll_mean", pa.float64())]
        self.done_output = "ll_sum"

    def params(self) -> dict:
        return {"model": self.model.settings.model, "checkpoint": self.model.settings.checkpoint_file().name,  # type: ignore[union-attr]
                "device": self.model.settings.device}

    def score(self, values: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
        sums: list[float | None] = []
        means: list[float | None] = []
        for seq in values.to_pylist():
            if not seq:
                sums.append(None)
                means.append(None)
                continue
            s, m = self.model.loglik(seq.upper())
            sums.append(s)
            means.append(m)
        return {"ll_sum": pa.array(sums, pa.float64()), "ll_mean": pa.array(means, pa.float64())}


class Evo2EmbeddingScorer:
    """`evo2/extract_embedding`: mean-pooled embedding of one layer (a list<float> column)."""

    def __init__(self, model: Evo2Model, layer: str | None = None):
        self.model = model
        self.layer = layer or DEFAULT_LAYER[model.settings.model]
        self.outputs: list[tuple[str, pa.DataType]] = [("embedding_mean", pa.list_(pa.float32()))]
        self.done_output = "embedding_mean"

    def params(self) -> dict:
        return {"model": self.model.settings.model, "layer": self.layer, "device": self.model.settings.device}

    def score(self, values: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
        out = [None if not seq else self.model.embedding(seq.upper(), self.layer).tolist() for seq in values.to_pylist()]
        return {"embedding_mean": pa.array(out, pa.list_(pa.float32()))}
