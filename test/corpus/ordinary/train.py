"""Fine-tune a small causal LM on support tickets.

Usage:
    python train.py --config configs/base.yaml --max-tokens 4096 --seed 1234
"""
from __future__ import annotations

import argparse
import getpass
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

log = logging.getLogger(__name__)

CHECKPOINT_SHA256 = "f0f1826fbde97e8f458bfb29ba54d212a35be98fed744f6476a64a84bec6d7bc"
RUN_ID = "df18c162-62f5-41a4-ab1a-fbfac09a82bd"
PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "</s>"
SPECIAL_TOKENS = {"pad_token": PAD_TOKEN, "eos_token": EOS_TOKEN, "bos_token": "<s>"}


@dataclass
class TrainConfig:
    model_name: str = "acme/tiny-support-lm-125m"
    tokenizer_name: Optional[str] = None
    max_tokens: int = 4096
    batch_size: int = 8
    learning_rate: float = 3e-4
    warmup_steps: int = 200
    hub_token: Optional[str] = field(default=None, repr=False)
    wandb_api_key: Optional[str] = field(default=None, repr=False)
    output_dir: Path = Path("runs") / RUN_ID


def load_tokenizer(cfg: TrainConfig):
    tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer_name or cfg.model_name, token=cfg.hub_token)
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def resolve_credentials(cfg: TrainConfig) -> TrainConfig:
    cfg.hub_token = cfg.hub_token or os.environ.get("HF_TOKEN")
    cfg.wandb_api_key = cfg.wandb_api_key or os.getenv("WANDB_API_KEY")
    if cfg.hub_token is None and os.isatty(0):
        cfg.hub_token = getpass.getpass("Hugging Face token: ")
    return cfg


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--hub-token", default=None, help="Hugging Face access token (defaults to $HF_TOKEN)")
    args = parser.parse_args()

    cfg = resolve_credentials(TrainConfig(max_tokens=args.max_tokens, hub_token=args.hub_token))
    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(cfg)
    model = AutoModelForCausalLM.from_pretrained(cfg.model_name, token=cfg.hub_token)
    model.resize_token_embeddings(len(tokenizer))
    log.info("loaded %s (%d params), vocab=%d, run=%s", cfg.model_name, model.num_parameters(), len(tokenizer), RUN_ID)
    digest = file_digest(cfg.output_dir / "model.safetensors") if (cfg.output_dir / "model.safetensors").exists() else None
    if digest and digest != CHECKPOINT_SHA256:
        log.warning("checkpoint digest mismatch: %s != %s", digest, CHECKPOINT_SHA256)


if __name__ == "__main__":
    main()
