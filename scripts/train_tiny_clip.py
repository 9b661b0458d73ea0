"""Train the tiny open_clip model that the tests load through the production CLIP path.

    .venv/bin/python scripts/train_tiny_clip.py [--out tests/data/tiny_clip] [--steps 1200]

It draws coloured shapes on noisy backgrounds (tests/tiny_clip.py), captions them ("a photo of a
red circle.") and trains a small ViT (48 px) + small text transformer contrastively, 60–80 s of
one CPU core. It writes OUT/config.json (an open_clip model config), OUT/tiny_clip.pt (fp16
weights) and OUT/prompts/*.toml (the TEST prompt set, in the production format), then prints the
zero-shot accuracy on held-out images. Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.tiny_clip import COLOURS, SHAPES, shape_image  # noqa: E402

# Small enough to train in a minute; the text tower keeps open_clip's 49,408-token vocabulary so
# the stock tokenizer works, which is why the text width is small (the embedding table dominates).
MODEL_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {
        "image_size": 48,
        "layers": 2,
        "width": 64,
        "head_width": 32,
        "patch_size": 8,
        "mlp_ratio": 2.0,
    },
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 32,
        "heads": 2,
        "layers": 2,
        "mlp_ratio": 2.0,
    },
}

TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a {}.",
    "a drawing of a {}.",
    "a {} on a plain background.",
)

# The TEST prompt set: concepts of the tiny world play Veille's categories (see tests/tiny_clip.py).
PROMPT_TEMPLATES = '["a photo of a {}.", "a picture of a {}.", "an image of a {}."]'
PROMPT_FILES = {
    "sexual.toml": ("sexual", "red circle"),
    "sexualised_edit.toml": ("sexualised_edit", "purple triangle"),
    "minor_present.toml": ("minor_present", "yellow square"),
    "synthetic.toml": ("synthetic", "cyan circle"),
}
NEGATIVES = (
    "red square",
    "red triangle",
    "blue circle",
    "green circle",
    "green square",
    "blue triangle",
    "yellow triangle",
    "purple square",
)


def write_prompts(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (category, concept) in PROMPT_FILES.items():
        (folder / name).write_text(
            f"# TEST prompt set for the tiny model: '{concept}' plays `{category}`.\n"
            f'category = "{category}"\n'
            f"templates = {PROMPT_TEMPLATES}\n\n"
            f'[[concepts]]\nlabel = "{concept}"\ntexts = ["{concept}"]\n',
            "utf-8",
        )
    blocks = "".join(
        f'\n[[negatives]]\nlabel = "{concept}"\ntexts = ["{concept}"]\n' for concept in NEGATIVES
    )
    (folder / "negatives.toml").write_text(
        "# TEST hard negatives for the tiny model: near misses of the flagged concepts.\n"
        f"templates = {PROMPT_TEMPLATES}\n{blocks}",
        "utf-8",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "tiny_clip")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--images", type=int, default=3600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import open_clip
    from open_clip.model import CLIP

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(1)
    started = time.perf_counter()

    model = CLIP(**MODEL_CONFIG)
    tokenizer = open_clip.SimpleTokenizer(context_length=MODEL_CONFIG["text_cfg"]["context_length"])
    preprocess = open_clip.image_transform(MODEL_CONFIG["vision_cfg"]["image_size"], is_train=False)

    classes = [(c, s) for c in COLOURS for s in SHAPES]
    # Training seeds start at 100,000 so test seeds (small numbers) are held-out images.
    labels = torch.tensor([i % len(classes) for i in range(args.images)])
    pixels = torch.stack(
        [
            preprocess(shape_image(*classes[int(label)], seed=100_000 + i))
            for i, label in enumerate(labels)
        ]
    )
    captions = tokenizer([t.format(f"{c} {s}") for c, s in classes for t in TEMPLATES])
    captions = captions.view(len(classes), len(TEMPLATES), -1)
    print(f"generated {len(pixels)} images in {time.perf_counter() - started:.1f}s")

    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=args.steps)
    batch = 128
    model.train()
    for step in range(args.steps):
        index = torch.randint(0, len(pixels), (batch,))
        target_class = labels[index]
        template = torch.randint(0, len(TEMPLATES), (batch,))
        images = model.encode_image(pixels[index], normalize=True)
        texts = model.encode_text(captions[target_class, template], normalize=True)
        logits = model.logit_scale.exp() * images @ texts.T
        # Several images of one class share a batch: every caption of the class is a positive.
        same = (target_class[:, None] == target_class[None, :]).float()
        targets = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)  # CLIP's cap: a temperature of at most 100
        if step % 100 == 0 or step == args.steps - 1:
            print(
                f"step {step:4d} loss {loss.item():.3f} scale {model.logit_scale.exp().item():.1f}"
            )

    model.eval()
    with torch.inference_mode():
        held_out = torch.stack(
            [preprocess(shape_image(*classes[i % len(classes)], seed=i)) for i in range(360)]
        )
        image_emb = model.encode_image(held_out, normalize=True)
        class_emb = model.encode_text(captions[:, 0], normalize=True)
        predicted = (image_emb @ class_emb.T).argmax(1)
        truth = torch.arange(360) % len(classes)
        accuracy = (predicted == truth).float().mean().item()
    print(f"held-out zero-shot accuracy {accuracy:.3f} over {len(classes)} classes")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps(MODEL_CONFIG, indent=2) + "\n", "utf-8")
    state = model.state_dict()
    # Rows of tokens never seen in training stay at their random init; zero them so the
    # checkpoint compresses well in git (fp16 halves the rest).
    used = torch.zeros(MODEL_CONFIG["text_cfg"]["vocab_size"], dtype=torch.bool)
    used[captions.unique()] = True
    state["token_embedding.weight"][~used] = 0
    torch.save(
        {k: v.half() if v.is_floating_point() else v for k, v in state.items()},
        args.out / "tiny_clip.pt",
    )
    write_prompts(args.out / "prompts")
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
