"""Pick the compute backend for labs and training entry points: MLX, CUDA, MPS or CPU.

    from tools.device import pick_device
    device = pick_device()          # e.g. "cuda", "mps", "cpu" (torch) or "mlx"

Order: ML2LLM_DEVICE if set (mlx | cuda | mps | cpu), else CUDA, then MPS, then CPU for torch
code. MLX is chosen only when asked for (``prefer_mlx=True`` or ML2LLM_DEVICE=mlx), because a
torch step cannot run on it. Graders do not use this: they run on the CPU, deterministically.
"""

from __future__ import annotations

import importlib.util
import os

CHOICES = ("mlx", "cuda", "mps", "cpu")


def available() -> list[str]:
    """Backends usable on this machine, best first."""
    found = []
    if importlib.util.find_spec("mlx") is not None:
        try:
            import mlx.core  # noqa: F401  (plain `mlx` on Linux installs but does not import)

            found.append("mlx")
        except ImportError:
            pass
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            found.append("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            found.append("mps")
        found.append("cpu")
    return found


def pick_device(prefer_mlx: bool = False) -> str:
    """The backend to use; raises ValueError naming the choices when an override is unusable."""
    have = available()
    wanted = os.environ.get("ML2LLM_DEVICE", "").strip().lower()
    if wanted:
        if wanted not in CHOICES:
            raise ValueError(f"ML2LLM_DEVICE={wanted!r}: choose one of {', '.join(CHOICES)}")
        if wanted not in have:
            raise ValueError(f"ML2LLM_DEVICE={wanted} is not available here; available: "
                             f"{', '.join(have) or 'none (install torch or mlx)'}")
        return wanted
    order = ("mlx", "cuda", "mps", "cpu") if prefer_mlx else ("cuda", "mps", "cpu", "mlx")
    for name in order:
        if name in have:
            return name
    raise ValueError("no backend available: pip install -e '.[torch]' (or '.[mlx]')")
