"""Two gloo processes choose checkpoints together: rank 0 picks the file after a barrier and every
rank loads that one, even while rank 0 is still writing the final checkpoint (slowed down here)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn as nn

from tests.engine.conftest import free_port
from vov3d.checkpoint import save_checkpoint
from vov3d.config import get_cfg
from vov3d.utils.run_layout import RunFolder


def slow_save_then_choose(rank: int, port: int, output_dir: Path) -> None:
    from vov3d.engine.run_folder import load_test_checkpoint, resume_or_initialise, save_training_checkpoint
    from vov3d.utils import distributed as du

    du.init_process_group("gloo", f"tcp://127.0.0.1:{port}", rank, 2, timeout_minutes=5)
    try:
        cfg = get_cfg()
        cfg.merge_from_list(["OUTPUT_DIR", str(output_dir), "NUM_GPUS", "0"])
        torch.manual_seed(2)
        model = nn.Linear(3, 2)  # the weights of epoch 2
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        schedule = SimpleNamespace(state_dict=lambda: {})
        if rank == 0:
            save = torch.save

            def slow_save(*args, **kwargs) -> None:
                time.sleep(3)
                save(*args, **kwargs)

            torch.save = slow_save
        save_training_checkpoint(cfg, 1, model, optimizer, schedule, None)  # epoch index 1: 2 epochs done
        tested = load_test_checkpoint(cfg, nn.Linear(3, 2))[0]
        start, _ = resume_or_initialise(cfg, nn.Linear(3, 2), optimizer, schedule, None)
        (output_dir / f"rank{rank}.txt").write_text(f"{tested}\n{start}")
        assert tested == RunFolder(str(output_dir)).checkpoint_path(2)
    finally:
        du.destroy_process_group()


def test_every_rank_tests_and_resumes_the_file_rank0_wrote_last(tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path))
    save_checkpoint(run.checkpoint_path(1), nn.Linear(3, 2), epoch=0, cfg=get_cfg())
    torch.multiprocessing.spawn(slow_save_then_choose, args=(free_port(), tmp_path), nprocs=2)
    final = run.checkpoint_path(2)
    for rank in range(2):
        assert (tmp_path / f"rank{rank}.txt").read_text().splitlines() == [final, "2"]
