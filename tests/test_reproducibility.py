"""Same inputs, same weights: two training processes started from scratch agree bit for bit.

Each run is a separate Python process (fresh interpreter, fresh thread pools, a DataLoader
worker drawing and rendering the synthetic stream), so nothing can be shared between them
but the code and the seed. A multimodal model is used because it exercises the most:
both encoders, attention, modality dropout, KD, the image renderer and gain augmentation.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import hashlib, sys, tempfile
    import torch
    from vizecg.data.stream import SyntheticStreamDataset
    from vizecg.models import create_loss, create_model, model_entry
    from vizecg.render.training import TrainingImageRenderer
    from vizecg.training.engine import fit

    torch.set_num_threads(int(sys.argv[1]))
    renderer = TrainingImageRenderer(64, 178, randomize_style=True, artifact_severity=(0.0, 0.6), curriculum=(1, 2))
    train = SyntheticStreamDataset(32, stream_seed=1, holdout_seed=0, image_renderer=renderer, decimate=4,
                                   gain_augment=(0.5, 2.0))
    val = SyntheticStreamDataset(16, stream_seed=2, image_renderer=TrainingImageRenderer(64, 178), decimate=4,
                                 distinct_epochs=False)
    torch.manual_seed(0)
    model = create_model("vizecgnet", **model_entry("vizecgnet").tiny_options)
    with tempfile.TemporaryDirectory() as out:
        fit(model, create_loss(model), train, val, out_dir=out, epochs=2, batch_size=8, lr=1e-3,
            inputs=("signal", "image"), val_inputs=("image",), num_workers=1, seed=0, progress=False,
            tensorboard=False)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode()); digest.update(tensor.detach().contiguous().numpy().tobytes())
    print(digest.hexdigest())
""")


def train_in_fresh_process(threads: int) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(threads)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_two_fresh_processes_train_bit_identical_weights() -> None:
    first, second = train_in_fresh_process(2), train_in_fresh_process(2)
    assert first == second
