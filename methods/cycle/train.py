"""Step 4: the learner's SFT on the mix of refinement and generation rows.

The same DeepSpeed engine as Phase I (learner/sft.py: loss on target tokens only), with
CYCLE's own steps, learning rate, batch size and warmup (configs/cycle.yaml: train) and
the base config's engine settings.  The model is exported in Hugging Face format with
`cycle.json` beside it: the template budget it was trained with, which `execrl eval
--refine` reads back so that inference prompts are laid out as training's were.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from cluster.config import TrainConfig
from core.settings import to_dict
from learner.batches import SFTBatch
from learner.export import export_hf
from learner.sft import SFTTrainer

from .config import CycleConfig, TemplateConfig
from .data import MixedBatches, Row

TEMPLATE_FILE = "cycle.json"


def train_on_mix(cycle: CycleConfig, base: TrainConfig, start_model: str, refine: Sequence[Row],
                 generation: Sequence[Row], target: Path, pad_id: int, log: Callable[[str], None] = print) -> dict:
    """Train from `start_model`, save at `target` (staged, then renamed); the stats."""
    stage = cycle.train
    learner = replace(base.learner, sft=replace(base.learner.sft, steps=stage.steps, lr=stage.lr,
                                                batch_size=stage.batch_size, warmup_steps=stage.warmup_steps))
    trainer = SFTTrainer.from_pretrained(start_model, learner)
    batches = MixedBatches(refine, generation, cycle.data.refine_share, stage.batch_size, cycle.seed)
    start, losses = time.perf_counter(), []
    for step in range(stage.steps):
        rows = batches.next()
        stats = trainer.step(SFTBatch.from_pairs([r.prompt for r in rows], [r.target for r in rows], pad_id))
        losses.append(stats.loss)
        if step % 50 == 0 or step == stage.steps - 1:
            log(f"cycle sft step {step + 1}/{stage.steps} loss {stats.loss:.3f} "
                f"({batches.n_refine} refinement + {batches.n_generation} generation rows; "
                f"{time.perf_counter() - start:.0f}s)")
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    export_hf(trainer.engine, staging, start_model)
    write_template(staging, cycle.data.template)
    staging.rename(target)
    return {"steps": stage.steps, "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None, "seconds": round(time.perf_counter() - start, 1)}


def write_template(model_dir: Path, template: TemplateConfig) -> None:
    (Path(model_dir) / TEMPLATE_FILE).write_text(json.dumps(to_dict(template), indent=2) + "\n")


def read_template(model_dir: str | Path) -> tuple[TemplateConfig, bool]:
    """(the budget a CYCLE model was trained with, True) or (the defaults, False)."""
    from core.settings import from_dict

    path = Path(model_dir) / TEMPLATE_FILE
    if not path.is_file():
        return TemplateConfig(), False
    return from_dict(TemplateConfig, json.loads(path.read_text()), str(path)), True
