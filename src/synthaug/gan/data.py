"""What the GAN trains on: fold-f training slices as tensors, sampled in minibatches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from synthaug.data.store import SliceStore


@dataclass
class TrainingSlices:
    """All training slices of one fold, in memory.

    images [N, C, R, R] float32 in [-1, 1]; labels [N, R, R] int64 in 0..K-1.
    """

    images: torch.Tensor
    labels: torch.Tensor
    patients: list[str]
    median_slices: int

    @classmethod
    def of(cls, store: SliceStore, patients: list[str]) -> TrainingSlices:
        """The slices of ``patients``: the run's training patients (run.json), never a
        validation or test patient of its fold."""
        images, labels = store.training_arrays(patients)
        return cls(
            images=torch.from_numpy(images),
            labels=torch.from_numpy(labels),
            patients=patients,
            median_slices=store.median_slices(patients),
        )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def sample(
        self, batch: int, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A random minibatch (with replacement): images [B, C, R, R], labels [B, R, R]."""
        idx = torch.randint(len(self), (batch,), generator=generator)
        return self.images[idx].to(device), self.labels[idx].to(device)
