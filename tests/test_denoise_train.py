"""Tests of denoise.config and denoise.train: recipes, learning, exact resume, outputs, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from denoise.config import TrainConfig, load_train_config
from denoise.inference import load_denoiser
from denoise.train import cosine_schedule, train_denoiser
from raw_synth.errors import RawSynthError
from raw_synth.training.state import load_training_state
from tests.test_denoise_dataset import make_store

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("train-store") / "s", n=24, shard_size=8, h=16, w=16, noise=4.0)


def recipe(**train: Any) -> dict[str, Any]:
    return {
        "datasets": {"val_fraction": 0.3, "crop": 8},
        "network": {"name": "denoiser-tiny", "conditioned": True, "dim": 4, "enc_blocks": [1, 1, 1, 1],
                    "dec_blocks": [0, 1, 1], "heads": [1, 1, 1, 1]},
        "train": {"max_steps": 6, "batch_size": 4, "lr": 2e-3, "warmup_steps": 2, "checkpoint_every": 0,
                  **train},
        "val": {"every": 0, "max_samples": 4, "crop": 16},
        "logger": {"log_every": 1, "progress": False, "plot": False},
    }


def test_recipes_load_and_report_errors(tmp_path: Path) -> None:
    for name in ("train-denoiser-cpu.yaml", "train-denoiser-paper.yaml"):
        cfg = load_train_config(REPO / "configs" / name)
        assert cfg.network.overrides["conditioned"] is True
    assert load_train_config(None).to_dict() == TrainConfig.from_dict({}).to_dict()
    cfg = TrainConfig.from_dict(recipe())
    assert TrainConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    bad = tmp_path / "bad.yaml"
    cases = [
        ("trian: {}\n", r"bad.yaml: unknown section\(s\) trian; known: datasets, network, train, val, logger"),
        ("train: {lr: fast}\n", r"bad.yaml: train.lr: expected a number, got 'fast'"),
        ("train: {batch_size: 0}\n", r"bad.yaml: train.batch_size: expected an integer >= 1, got 0"),
        ("train: {amp: maybe}\n", r"bad.yaml: train.amp: expected one of auto, bf16, fp16, off, got 'maybe'"),
        ("datasets: {crop: 1}\n", r"bad.yaml: datasets.crop: expected null, an integer >= 2"),
        ("datasets: {exposure: 2}\n", r"bad.yaml: datasets.exposure: expected a probability in \[0, 1\], got 2$"),
        ("datasets: {exposure: -1}\n", r"bad.yaml: datasets.exposure: expected a probability >= 0, got -1$"),
        ("val: {evry: 3}\n", r"bad.yaml: val: unknown field\(s\) evry; known: batch_size, crop, every, max_samples"),
        ("network: {name: huge}\n", r"bad.yaml: network: unknown denoiser 'huge'"),
        ("network: {name: denoiser-tiny, widht: 3}\n", r"bad.yaml: network: .*unknown override\(s\) widht"),
        ("train: [1, 2\n", r"bad.yaml: not valid YAML \(line 2\)"),
        ("- 1\n- 2\n", r"bad.yaml: a training recipe must be a mapping of sections, got list"),
    ]
    for text, message in cases:
        bad.write_text(text)
        with pytest.raises(RawSynthError, match=message):
            load_train_config(bad)
    with pytest.raises(RawSynthError, match="missing.yaml: training recipe not found"):
        load_train_config(tmp_path / "missing.yaml")
    # the bundled recipes by name, as train-isp takes them
    assert load_train_config("cpu") == load_train_config(REPO / "configs" / "train-denoiser-cpu.yaml")
    assert load_train_config("paper").network.name == "denoiser-paper"
    # the fine-tuning recipe starts from the bundled model; it is a denoiser recipe only
    finetune = load_train_config("finetune")
    assert finetune.train.init == "denoiser-tiny" and finetune.datasets.crop == 128
    with pytest.raises(RawSynthError, match=r"^nothing: training recipe not found \(give a YAML file or one of "
                                            r"cpu, paper, finetune\)$"):
        load_train_config("nothing")
    from raw_synth.training import load_config

    with pytest.raises(RawSynthError, match=r"finetune: training recipe not found \(.* one of cpu, paper\)$"):
        load_config("finetune")


def test_cosine_schedule() -> None:
    assert cosine_schedule(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert cosine_schedule(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert cosine_schedule(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert cosine_schedule(55, 100, 10, 0.1) == pytest.approx(0.55)
    assert cosine_schedule(100, 100, 10, 0.1) == pytest.approx(0.1)


def test_training_lowers_the_loss_and_writes_a_run(store: Path, tmp_path: Path) -> None:
    cfg = recipe(max_steps=40, lr=1e-2)
    cfg["val"]["every"] = 20
    cfg["logger"]["plot"] = True
    summary = train_denoiser(cfg, store, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert len(losses) == 40 and summary.steps == 40
    assert sum(losses[-8:]) / 8 < 0.92 * sum(losses[:8]) / 8
    vals = [r for r in rows if r["kind"] == "val"]
    assert [v["step"] for v in vals] == [20, 40] and vals[-1]["n"] == 4
    assert vals[-1]["psnr"] > vals[-1]["psnr_noisy"] + 0.5  # denoising beats the noisy input after 40 steps
    assert summary.val == vals[-1] and summary.best_psnr == max(v["psnr"] for v in vals)
    assert summary.n_train == 16 and summary.n_val == 8
    for name in ("model.safetensors", "best.safetensors", "train_state.safetensors", "config.yaml", "curves.png"):
        assert (tmp_path / "run" / name).is_file(), name
    model, meta = load_denoiser(summary.model_path)
    assert model.config.conditioned and meta["extra"]["step"] == 40
    with pytest.raises(RawSynthError, match="run: holds a training run; use --resume"):
        train_denoiser(cfg, store, tmp_path / "run")


def test_resume_is_bit_identical_to_uninterrupted(store: Path, tmp_path: Path) -> None:
    cfg = recipe(max_steps=6)
    full = train_denoiser(cfg, store, tmp_path / "full")
    part = train_denoiser(cfg, store, tmp_path / "part", stop_after=3)
    assert part.steps == 3
    resumed = train_denoiser(None, store, tmp_path / "part", resume=True)
    assert resumed.resumed_from == 3 and resumed.steps == 6

    def state(run: str) -> tuple[dict[str, torch.Tensor], torch.optim.Optimizer]:
        from denoise.models import create_denoiser

        network = dict(cfg["network"])
        model = create_denoiser(network.pop("name"), **network)
        opt = torch.optim.AdamW(model.parameters())
        load_training_state(tmp_path / run / "train_state.safetensors", model=model, optimizer=opt,
                            restore_random=False)
        return model.state_dict(), opt

    (w_full, opt_full), (w_res, opt_res) = state("full"), state("part")
    assert all(torch.equal(w_full[k], w_res[k]) for k in w_full)
    for a, b in zip(opt_full.state_dict()["state"].values(), opt_res.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    def rows(run: str) -> list[dict[str, Any]]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k != "samples_per_s"} for x in lines]

    assert [r["step"] for r in rows("full")] == [1, 2, 3, 4, 5, 6, 6]  # 6 train records, then the final validation
    assert rows("full") == rows("part")
    assert full.final_loss == resumed.final_loss


def test_run_errors(store: Path, tmp_path: Path) -> None:
    with pytest.raises(RawSynthError, match="no training state to resume"):
        train_denoiser(recipe(), store, tmp_path / "none", resume=True)
    with pytest.raises(RawSynthError, match="--data: no shard store given"):
        train_denoiser(recipe(), None, tmp_path / "a")
    with pytest.raises(RawSynthError, match="nowhere: shard store not found"):
        train_denoiser(recipe(), tmp_path / "nowhere", tmp_path / "b")
    with pytest.raises(RawSynthError, match=r"train.batch_size: 64 \(x 1 ranks\) exceeds the 16 training samples"):
        train_denoiser(recipe(batch_size=64), store, tmp_path / "c")
    with pytest.raises(RawSynthError, match="--max-steps: expected a positive integer, got 0"):
        train_denoiser(recipe(), store, tmp_path / "d", max_steps=0)
    train_denoiser(recipe(max_steps=2), store, tmp_path / "e")
    with pytest.raises(RawSynthError, match=r"cannot resume with a different recipe \(train.lr: 0.002 != 0.1\)"):
        train_denoiser(recipe(lr=0.1), store, tmp_path / "e", resume=True)


def test_init_starts_from_a_checkpoint_and_checks_it(store: Path, tmp_path: Path) -> None:
    first = train_denoiser(recipe(max_steps=2), store, tmp_path / "first")
    # lr 0 (min_lr 0): the fine-tuned weights stay exactly those of the checkpoint it starts from
    frozen = recipe(max_steps=1, lr=1e-12, min_lr=0.0, weight_decay=0.0, init=str(first.model_path))
    tuned = train_denoiser(frozen, store, tmp_path / "tuned")
    a, _ = load_denoiser(first.model_path)
    b, meta = load_denoiser(tuned.model_path)
    assert meta["extra"]["init"] == str(first.model_path) and "init" not in load_denoiser(first.model_path)[1]["extra"]
    assert all(torch.allclose(a.state_dict()[k], b.state_dict()[k], atol=1e-9) for k in a.state_dict())
    scratch = train_denoiser(recipe(max_steps=1, lr=1e-12, min_lr=0.0, weight_decay=0.0), store, tmp_path / "s")
    c, _ = load_denoiser(scratch.model_path)
    assert not all(torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())
    # the bundled model by name; it is a full-size denoiser-tiny, so this tiny recipe does not fit it
    differs = (r"train.init denoiser-tiny: its network differs from the recipe's "
               r"\(dec_blocks: \[1, 1, 1\] in the checkpoint, \[0, 1, 1\] in the recipe\)")
    with pytest.raises(RawSynthError, match=differs):
        train_denoiser(recipe(init="denoiser-tiny"), store, tmp_path / "bundled")
    with pytest.raises(RawSynthError, match=r"train.init nowhere.safetensors: no such checkpoint file or bundled"):
        train_denoiser(recipe(init="nowhere.safetensors"), store, tmp_path / "missing")
    with pytest.raises(RawSynthError, match=r"train.init: expected a checkpoint file, a bundled model name or null"):
        TrainConfig.from_dict(recipe(init=3))
    # a resumed fine-tuning run takes its weights from its own state: the checkpoint it started from may be gone
    start = tmp_path / "start.safetensors"
    start.write_bytes(first.model_path.read_bytes())
    assert train_denoiser(recipe(max_steps=2, init=str(start)), store, tmp_path / "part", stop_after=1).steps == 1
    start.unlink()
    assert train_denoiser(None, store, tmp_path / "part", resume=True).steps == 2
    # init is part of the run's identity: a resume with another starting point is refused
    with pytest.raises(RawSynthError, match=r"cannot resume with a different recipe \(train.init: "):
        train_denoiser(recipe(max_steps=1, lr=1e-12, min_lr=0.0, weight_decay=0.0), store, tmp_path / "tuned",
                       resume=True)
