"""What the machine has: refuse devices it lacks with one line that says what it has."""

from __future__ import annotations

import torch

from dgm.errors import ConfigError


def is_worker_process() -> bool:
    """True in the extra processes of a multi-process (DDP) run: they re-run the command and must
    not check or write run files."""
    import os

    return int(os.environ.get("LOCAL_RANK", "0")) != 0 or int(os.environ.get("NODE_RANK", "0")) != 0


def machine_summary() -> str:
    """E.g. "2 CPU cores, no CUDA GPU"."""
    import os

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"{os.cpu_count()} CPU cores, " + (f"{gpus} CUDA GPU(s)" if gpus else "no CUDA GPU")


def check_accelerator(accelerator: str, devices: int = 1) -> None:
    """Refuse an accelerator (``--accelerator``) or a number of GPUs this machine lacks."""
    if accelerator in ("gpu", "cuda"):
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0:
            raise ConfigError(
                f"--accelerator {accelerator}: this machine has no CUDA GPU ({machine_summary()}); "
                "use --accelerator cpu"
            )
        if devices > available:
            raise ConfigError(f"--devices {devices} asks for {devices} GPUs; this machine has {available}")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"--accelerator mps: this machine has no Apple GPU ({machine_summary()}); use --accelerator cpu"
        )


def check_device(device: str) -> torch.device:
    """The torch device named by ``--device`` (cpu, cuda, cuda:1, mps), if this machine has it."""
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device must be cpu, cuda, cuda:N or mps, got {device!r}") from None
    if parsed.type == "cuda":
        check_accelerator("cuda", (parsed.index or 0) + 1)
    elif parsed.type == "mps":
        check_accelerator("mps")
    elif parsed.type != "cpu":
        raise ConfigError(f"--device must be cpu, cuda, cuda:N or mps, got {device!r}")
    return parsed
