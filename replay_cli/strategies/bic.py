"""BiC (Wu et al. 2019, "Large scale incremental learning"): Avalanche's ``BiCPlugin`` fitted to the
pinned stack in two places, nothing else changed.

- It holds out validation samples by assigning ``experience.dataset``, which Avalanche 0.6's
  ``DatasetExperience`` (scenarios built with ``benchmark_from_datasets``, as all ours are) makes
  read-only: it gets a shallow copy of the experience whose ``dataset`` may be reassigned.
- Its bias-correction stage builds ``MultiStepLR(..., verbose=False)``, an argument torch 2.14
  removed: the stage is written here with the same steps (a ``BiasLayer`` on the classes of the new
  experience, SGD with momentum 0.9 at ``lr``, the learning rate divided by 10 at epochs 50, 100 and
  150, cross-entropy plus 0.1 * beta^2 / 2 on the held-out buffer, ``stage_2_epochs`` epochs).
"""

from __future__ import annotations

from typing import Any

from avalanche.training.plugins import BiCPlugin as AvalancheBiCPlugin

from replay_cli.data.avalanche_internals import writable_experience


class BiCPlugin(AvalancheBiCPlugin):
    """Avalanche's BiC plugin, same constructor (see the module docstring for what differs)."""

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        strategy.experience = writable_experience(strategy.experience)  # the benchmark's own stays untouched
        super().before_train_dataset_adaptation(strategy, **kwargs)

    def bias_correction_step(
        self, strategy: Any, persistent_workers: bool = False, num_workers: int = 0
    ) -> None:
        import torch
        from avalanche.benchmarks.utils import concat_datasets
        from avalanche.models.bic_model import BiasLayer
        from torch.utils.data import DataLoader

        strategy.model.eval()
        self.bias_layer = BiasLayer(strategy.adapted_dataset.targets.uniques).to(strategy.device).train()
        optimizer = torch.optim.SGD(self.bias_layer.parameters(), lr=self.lr, momentum=0.9)
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[50, 100, 150], gamma=0.1)
        held_out = concat_datasets([buffer.buffer for buffer in self.val_buffer.values()])
        loader = DataLoader(
            held_out,
            batch_size=strategy.train_mb_size,
            shuffle=True,
            num_workers=num_workers,
            persistent_workers=persistent_workers,
        )
        for _ in range(self.stage_2_epochs):
            for x, y, *_ in loader:
                x, y = x.to(strategy.device), y.to(strategy.device)
                with torch.no_grad():
                    logits = strategy.model(x)
                loss = torch.nn.functional.cross_entropy(self.bias_layer(logits), y)
                loss = loss + 0.1 * self.bias_layer.beta.sum() ** 2 / 2
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            schedule.step()
        self.bias_layer.eval().requires_grad_(False)
