"""What a run costs: forward and backward passes in samples and FLOPs, buffer bytes, peak memory.

Methods differ in compute (MIR's virtual update and scoring, RAR's adversarial steps, GSS's
per-sample gradients) and in memory (DER keeps logits; a 32x32x3 image is not an 8x8 digit), so
equal-sample comparisons hide their cost (Prabhu et al. 2023, "Computationally Budgeted Continual
Learning"; Ghunaim et al. 2023, "Real-Time Evaluation in Online Continual Learning", which checks
forward and backward counts with a FLOPs profiler).

:class:`CostPlugin` counts without per-method code: a hook on the model counts every sample that goes
through its forward, whatever calls it: the training loop, a method's extra passes, a copy of the
model (copies carry the hook). Backward passes: the training loop's own (the model calls from
Avalanche's ``before_forward`` to ``after_backward``, whose outputs the loss backpropagated by
``strategy.backward`` reaches, or a method's own backward in between, as RAR's attack in
``before_backward``) are counted at ``after_backward``; every other call's output in an autograd
graph gets a pre-hook on its gradient function that counts the backward pass reaching it
(``loss.backward()`` and ``torch.autograd.grad`` alike). A loop pass counts one backward however
often it is backpropagated (MIR's virtual update, ``autograd.grad`` of the loop's loss with the
graph kept, is a second backward of the new samples that is not counted), and one if a pass with
gradients in that window is never backpropagated (none of replay-cli's methods makes one). A
Python hook run by autograd costs about 10 microseconds a pass, a tenth of a small model's step,
which is why the loop's own passes are counted from two callbacks; they are logged by reference
as they happen and counted every few iterations, which costs the training loop less than the same
work spread over every iteration (measured with ``scripts/bench_cost.py``). A hook on the model
itself sends every call through torch's slow call path (about 2.5% of a small model's training
time, even empty), and each callback Avalanche calls per iteration costs about a microsecond:
where nothing but the training loop's forward can call the model inside a training epoch
(:func:`only_the_loop_calls_the_model`: plain replay), the two callbacks are not set, the hook is
lifted while each epoch draws its minibatches from ``strategy.dataloader`` (:class:`DrawnBatches`:
passed through as they are, one append each), and the loop's passes are read from those
minibatches, as Avalanche's forward calls the model (``avalanche_forward``) and as many as the epoch
trained (Avalanche's clock): the same counts, checked by a test. The FLOPs of one
sample are measured once per input shape with :class:`torch.utils.flop_counter.FlopCounterMode` on a
copy of the model (its real forward and backward: matmuls and convolutions, as torch counts them;
elementwise ops are not counted), after the step, so the run's numbers, state and random draws are
untouched. Passes through a module that is not the model (RAR's feature extractor, a traced graph)
are not seen.
"""

from __future__ import annotations

import copy
import resource
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from avalanche.core import BasePlugin

TRAIN, EVAL = "train", "eval"
_HOOKED = "_replay_cli_cost_counter"  # the model attribute naming the counter its hooks report to
_PROBE_ROWS = 2  # samples the FLOPs are measured on (batch norm needs two in training mode)
_LOGGED_ITERATIONS = 16  # training iterations logged before their passes are counted
_ITERATION_CALLBACKS = (  # and the epochs': the hook is lifted while an epoch draws its minibatches
    "before_training_epoch",
    "after_training_epoch",
    "before_training_iteration",
    "before_forward",
    "after_forward",
    "before_backward",
    "after_backward",
    "before_update",
    "after_update",
    "after_training_iteration",
)


@dataclass
class PassCounts:
    """Samples through the model per (phase (``train``/``eval``), (input shape, dtype)), forward and
    backward."""

    forward: dict[tuple[str, Any], int] = field(default_factory=lambda: defaultdict(int))
    backward: dict[tuple[str, Any], int] = field(default_factory=lambda: defaultdict(int))

    def samples(self, phase: str, direction: str) -> int:
        counts = self.forward if direction == "forward" else self.backward
        return sum(n for (p, _), n in counts.items() if p == phase)


class CostPlugin(BasePlugin):
    """Counts the model's passes (see the module docstring); :meth:`step_cost` closes a step. A
    ``BasePlugin`` with the supervised callbacks it needs only: Avalanche calls each callback a
    plugin has at every iteration, so this one costs two calls an iteration where the hook stays
    (``before_forward`` and ``after_backward``, set per instance), none where it is lifted. The
    loop's passes are logged as they happen and counted every few iterations (:meth:`count_logged`).

    ``step_cost`` returns one record per training step (the keys of ``results.json`` ``cost.per_step``,
    documented in docs): samples and FLOPs of training forward and backward passes, of evaluation
    forward passes, the buffer's bytes and the process's peak memory."""

    def __init__(self, observers: tuple[Any, ...] = ()) -> None:
        """``observers``: objects with ``backward(inputs)``, told of the model's inputs (a list of
        tensors (N, ...)) of the counted training backward passes (the replay counter of
        :mod:`replay_cli.reporting.diagnostics`)."""
        super().__init__()
        self.observers = observers
        self.counts = PassCounts()
        self.paused = False
        self.phase = TRAIN
        self._probes: dict[Any, tuple[int, tuple[Any, ...], dict[str, Any]]] = {}
        self._probed: set[Any] = set()  # input shapes whose probe has all its rows
        self._flops: dict[Any, tuple[float, float]] = {}  # shape key -> (forward, backward) per sample
        self._model: Any = None
        self._phase_before_eval = TRAIN
        self.loop_passes: list[Any] | None = None  # collecting from before_forward to after_backward
        self._loop_log: list[Any] = []  # the loop's passes per iteration its backward reached,
        # counted a few iterations at a time
        self._batches: list[Any] = []  # the minibatches a lifted epoch trained on, counted likewise
        self._drawn = 0  # minibatches the current lifted epoch drew
        self._device: Any = None  # the strategy's: where the FLOPs probes run
        self._hook: Any = None  # the handle of the hook this counter put on a model
        self._hooked: Any = None  # that model (a deep copy carries a hook no handle here removes)
        self._loop_only: bool | None = None  # only the loop's forward calls the model in epochs
        self._lifted = False  # the hook is lifted while an epoch draws its minibatches
        self._lifted_before_eval = False
        self._multi_task = False  # the model takes task labels (how Avalanche's forward calls it)

    # ----------------------------------------------------------- callbacks: which model, which phase
    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._close_window()  # left open by an error: its passes are forwards only
        self._end_drawing(strategy)  # an epoch an error ended: its iterations done are counted
        self.phase = TRAIN
        self._device = strategy.device
        self._watch(strategy.model)
        if self._loop_only is None:  # asked once: a run's strategy class and plugins stay as built
            self._loop_only = only_the_loop_calls_the_model(strategy, own=self)
            if not self._loop_only:  # Avalanche calls only the callbacks a plugin has (hasattr)
                self.before_forward, self.after_backward = self._open_window, self._log_window

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        if self._loop_only and strategy.model is self._model is self._hooked:
            strategy.dataloader = DrawnBatches(strategy.dataloader, self)  # lifts the hook as it draws

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self._end_drawing(strategy)

    def _open_window(self, strategy: Any, **kwargs: Any) -> None:
        """``before_forward`` where the hook stays."""
        if self.loop_passes:  # a loop that forwards without strategy.backward
            self._close_window()
        if strategy.model is not self._model:  # a method may replace the model within an experience
            self._watch(strategy.model)
        self.loop_passes = []  # the training loop's passes: their backward is strategy.backward

    def _log_window(self, strategy: Any, **kwargs: Any) -> None:
        """``after_backward`` where the hook stays."""
        if self.loop_passes is not None:  # None where a loop calls it without before_forward
            self._loop_log.append(self.loop_passes)
            self.loop_passes = None
            if len(self._loop_log) >= _LOGGED_ITERATIONS:
                self.count_logged()

    def start_drawing(self) -> None:
        """An epoch's loop starts drawing from :class:`DrawnBatches`: only its forward calls the model
        until the epoch ends (an epoch stopped before it draws keeps the hook: the passes that follow
        in ``after_training_exp`` are counted)."""
        self._lift_hook(True)

    def drew(self, batch: Any) -> None:
        """A lifted epoch's loop drew ``batch``: every batch drawn before it was trained on."""
        if len(self._batches) >= _LOGGED_ITERATIONS:
            self.count_logged()
        self._batches.append(batch)
        self._drawn += 1

    def _end_drawing(self, strategy: Any) -> None:
        """Put the epoch's own loader and the hook back; a batch drawn after the loop was told to
        stop (Avalanche breaks out after drawing it) or in an iteration an error ended was not
        trained on (Avalanche's clock counts the iterations done)."""
        if isinstance(strategy.dataloader, DrawnBatches):
            strategy.dataloader = strategy.dataloader.loader
        if self._drawn:
            untrained = self._drawn - strategy.clock.train_epoch_iterations
            if untrained > 0:
                del self._batches[-untrained:]
            self._drawn = 0
        self._lift_hook(False)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._close_window()
        self.count_logged()

    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        self._close_window()
        self._lifted_before_eval = self._lifted  # an evaluation inside an epoch (periodic, anytime)
        self._lift_hook(False)
        self._phase_before_eval, self.phase = self.phase, EVAL
        self._device = strategy.device
        self._watch(strategy.model)

    def after_eval(self, strategy: Any, **kwargs: Any) -> None:
        self.phase = self._phase_before_eval  # an evaluation inside training (periodic) goes back to it
        self._lift_hook(self._lifted_before_eval)

    def _watch(self, model: Any) -> None:
        self._model = model
        if getattr(model, _HOOKED, None) != id(self):
            self._hook, self._hooked = hook_model(model, self), model

    def _lift_hook(self, lift: bool) -> None:
        """Lift the hook off the model (``lift``) or put it back."""
        if lift == self._lifted:
            return
        if lift:
            from avalanche.models.utils import is_multi_task_module

            self._multi_task = is_multi_task_module(self._model)
            self._hook.remove()
        else:
            self._hook = hook_model(self._model, self)
        self._lifted = lift

    # ----------------------------------------------------------- counting (called by the hooks)
    def counted_pass(self, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        """Count a call of the model outside the training loop's window (its ``args``, ``kwargs``
        and ``output``; the loop's are logged by the hook, see :func:`hook_model`): its forward
        now, its backward when autograd reaches its output."""
        if self.paused or not args:
            return
        counted = self._counted_forward(args, kwargs, self.phase)
        grad_fn = getattr(output, "grad_fn", None)  # None without gradients: no backward to count
        if counted is not None and grad_fn is not None and self.phase == TRAIN:
            grad_fn.register_prehook(lambda grads: self.counted_backward(counted))

    def count_logged(self) -> None:
        """Count the training loop's logged passes, forward and backward: a few iterations at a
        time, or when a step ends (Python work spread over every iteration costs the loop more than
        the same work at once)."""
        log, self._loop_log = self._loop_log, []
        batches, self._batches = self._batches, []
        reached = []
        for passes in log:
            for args, kwargs, has_graph in passes:
                counted = self._counted_forward(args, kwargs, TRAIN)
                if counted is not None and has_graph:
                    reached.append(counted)
        for batch in batches:  # the model called as Avalanche's forward calls it (mb_x, mb_task_id)
            inputs = (batch[0], batch[-1]) if self._multi_task else (batch[0],)
            counted = self._counted_forward(inputs, {}, TRAIN)
            if counted is not None:
                reached.append(counted)
        self.counted_backward(*reached)

    def _close_window(self) -> None:
        """Count the passes of a loop window no backward closed (forwards only)."""
        passes, self.loop_passes = self.loop_passes, None
        for args, kwargs, _ in passes or ():
            self._counted_forward(args, kwargs, TRAIN)

    def _counted_forward(self, args: tuple[Any, ...], kwargs: dict[str, Any], phase: str) -> Any:
        """Count a forward pass; returns what its backward is counted with (None: not counted)."""
        inputs = args[0]
        shape = getattr(inputs, "shape", None)
        if not shape:
            return None
        n, probe = shape[0], (shape[1:], inputs.dtype)
        key = (phase, probe)
        self.counts.forward[key] += n
        if probe not in self._probed:
            self._keep_probe(probe, args, kwargs, n)
        return key, n, inputs

    def _keep_probe(self, shape: Any, args: tuple[Any, ...], kwargs: dict[str, Any], n: int) -> None:
        rows = min(n, _PROBE_ROWS)
        if self._probes.get(shape, (0,))[0] < rows:
            self._probes[shape] = (rows, *_probe_inputs(args, kwargs, n, self._device))
        if rows == _PROBE_ROWS:
            self._probed.add(shape)

    def counted_backward(self, *counted: Any) -> None:
        """Count the backward passes of forwards ``counted`` (as :meth:`_counted_forward` returned)."""
        if self.paused or not counted:
            return
        backward = self.counts.backward
        for key, n, _ in counted:
            backward[key] += n
        inputs = [x for _, _, x in counted]
        for observer in self.observers:
            observer.backward(inputs)

    @contextmanager
    def not_counting(self) -> Iterator[None]:
        """Passes of replay-cli's own (diagnostics) are not the method's cost."""
        paused, self.paused = self.paused, True
        try:
            yield
        finally:
            self.paused = paused

    # ----------------------------------------------------------- closing a step
    def step_cost(self, buffer_bytes: int | None, device: str = "cpu") -> dict[str, Any]:
        """The cost of the passes since the last call (then reset), plus the buffer's ``buffer_bytes``
        and peak memory so far. The FLOPs per sample of every input shape seen are measured now,
        on a copy of the model as it is after the step (a model that grows, e.g. a head per task,
        costs more in later steps)."""
        self.count_logged()
        self._measure_shapes()
        counts, self.counts = self.counts, PassCounts()
        record: dict[str, Any] = {}
        for phase in (TRAIN, EVAL):
            for direction in ("forward", "backward"):
                if phase == EVAL and direction == "backward":
                    continue
                record[f"{phase}_{direction}_samples"] = counts.samples(phase, direction)
            record[f"{phase}_flops"] = self._flops_of(counts, phase)
        record["buffer_bytes"] = buffer_bytes
        record.update(peak_memory(device))
        return record

    def _flops_of(self, counts: PassCounts, phase: str) -> float:
        total = 0.0
        for direction, table in ((0, counts.forward), (1, counts.backward)):
            for (p, shape), n in table.items():
                if p == phase:
                    total += n * self._flops.get(shape, (0.0, 0.0))[direction]
        return total

    def _measure_shapes(self) -> None:
        if self._model is None:
            return
        for shape, (rows, args, kwargs) in self._probes.items():
            with self.not_counting():
                self._flops[shape] = flops_per_sample(self._model, args, kwargs, rows)


class DrawnBatches:
    """A training loader whose minibatches are passed through as drawn, each told to ``counter``
    (:meth:`CostPlugin.drew`); anything else is the loader's own."""

    def __init__(self, loader: Any, counter: CostPlugin) -> None:
        self.loader, self.counter = loader, counter

    def __iter__(self) -> Iterator[Any]:
        self.counter.start_drawing()
        drew = self.counter.drew
        for batch in self.loader:
            drew(batch)
            yield batch

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:  # names this class lacks (a copy has no loader yet)
        if name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)


def hook_model(model: Any, counter: CostPlugin) -> Any:
    """A hook reporting ``model``'s passes to ``counter`` (see the module docstring): a call in the
    training loop's window (``before_forward`` to ``after_backward``) is one append to the
    counter's log (counted by :meth:`CostPlugin.count_logged`), any other goes to
    :meth:`CostPlugin.counted_pass`. A plain closure: a deep copy of the model (MIR's virtual
    model, RAR's attacked copy, GDumb's restart) keeps reporting to the same counter. Returns the
    hook's handle."""

    def after(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        logged = counter.loop_passes  # the training loop's window: one append, counted later
        if logged is not None and args and not counter.paused:
            logged.append((args, kwargs, getattr(output, "requires_grad", False)))
        else:
            counter.counted_pass(args, kwargs, output)

    setattr(model, _HOOKED, id(counter))  # an int: a deep copy of the model keeps it as it is
    return model.register_forward_hook(after, with_kwargs=True)


def only_the_loop_calls_the_model(strategy: Any, own: Any) -> bool:
    """Whether nothing but the training loop's forward calls ``strategy``'s model inside a training
    epoch, on the minibatch as drawn: Avalanche's SGD loop, unpacking, forward, criterion call and
    backward as ``SupervisedTemplate`` has them (its class and any between it and
    ``SupervisedTemplate`` define no method or property but dunders such as ``__init__``: ``Naive``,
    ``GDumb``; one of torch's loss modules as its loss function), and every plugin but ``own``
    overriding no iteration callback, or one of Avalanche's that never calls the model nor changes
    the minibatch (its clock, periodic evaluation and evaluation plugin: an evaluation they start is
    counted as such), or declaring ``model_free_iterations = True`` (neither, too). Any other
    strategy or plugin: False (the hook stays)."""
    from avalanche.core import SupervisedPlugin
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.plugins.clock import Clock
    from avalanche.training.templates import SupervisedTemplate
    from avalanche.training.templates.base_sgd import PeriodicEval

    from replay_cli.data import avalanche_internals

    if not isinstance(strategy, SupervisedTemplate) or not _is_torch_loss(
        avalanche_internals.loss_function(strategy)
    ):
        return False
    classes = type(strategy).__mro__
    for cls in classes[: classes.index(SupervisedTemplate)]:
        if any(hasattr(value, "__get__") and not _is_dunder(name) for name, value in vars(cls).items()):
            return False  # a method or property of its own (a function, a property, a classmethod)
    for plugin in strategy.plugins:
        if plugin is own or type(plugin) in (Clock, PeriodicEval, EvaluationPlugin):
            continue
        if getattr(plugin, "model_free_iterations", False):
            continue
        for name in _ITERATION_CALLBACKS:
            callback = getattr(type(plugin), name, None)
            if callback is not None and callback is not getattr(SupervisedPlugin, name):
                return False
    return True


def _is_torch_loss(criterion: Any) -> bool:
    """One of torch's own loss modules (``torch.nn.CrossEntropyLoss`` ...): it never calls the model."""
    kind = type(criterion)
    return kind.__name__.endswith("Loss") and getattr(torch.nn, kind.__name__, None) is kind


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _probe_inputs(args: tuple[Any, ...], kwargs: dict[str, Any], n: int, device: Any) -> tuple[tuple, dict]:
    """The first rows of every batched argument (detached copies on ``device``, None: where they
    are), the rest as given."""

    def rows(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == n:
            return value[:_PROBE_ROWS].detach().to(device or value.device, copy=True)
        return value

    return tuple(rows(a) for a in args), {k: rows(v) for k, v in kwargs.items()}


def flops_per_sample(
    model: Any, args: tuple[Any, ...], kwargs: dict[str, Any], rows: int
) -> tuple[float, float]:
    """(forward, backward) FLOPs of one sample through ``model``, counted by torch's
    ``FlopCounterMode`` on a deep copy in training mode (backward: gradients of the parameters from
    the sum of the outputs). The model, its gradients and every random generator are left as found."""
    from torch.utils.flop_counter import FlopCounterMode

    twin = copy.deepcopy(model).train()
    devices = [args[0].device.index] if args[0].is_cuda else []
    with torch.random.fork_rng(devices=devices):
        with FlopCounterMode(display=False) as forward_counter:
            output = twin(*args, **kwargs)
        with FlopCounterMode(display=False) as backward_counter:
            if isinstance(output, torch.Tensor) and output.requires_grad:
                output.float().sum().backward()
    return forward_counter.get_total_flops() / rows, backward_counter.get_total_flops() / rows


def peak_memory(device: str) -> dict[str, int | None]:
    """Peak resident set size of this process (bytes, since it started) and, on CUDA, torch's
    maximum allocated bytes on that device."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    record: dict[str, int | None] = {"peak_rss_bytes": int(rss if sys.platform == "darwin" else rss * 1024)}
    record["cuda_max_allocated_bytes"] = None
    if str(device).startswith("cuda"):
        record["cuda_max_allocated_bytes"] = int(torch.cuda.max_memory_allocated(device))
    return record


def buffer_bytes(held: Any) -> int | None:
    """Bytes of what the method's buffer keeps per sample, times its samples: the fields a sample is
    read with (inputs at their stored dtype, before any transform: uint8 images count one byte per
    pixel; labels; task labels; the logits DER keeps). ``held``: what
    :func:`replay_cli.strategies.build.buffer_samples` returns; 0 without a buffer, the reader's
    ``stored_bytes`` for a method's own memory (None where it does not say)."""
    if held is None:
        return 0
    if hasattr(held, "stored_bytes"):  # a method's own memory (a generator holds no samples)
        return held.stored_bytes
    if len(held) == 0:
        return 0
    return len(held) * _bytes_per_sample(held)


def stored_fields(held: Any, index: Any) -> list[Any] | None:
    """The fields of buffered samples ``index`` (LongTensor) as stored, before any transform (a
    buffer kept as positions read from the training stream); None when the dataset tree is of a kind
    :func:`replay_cli.data.avalanche_internals.gather` does not know."""
    from replay_cli.data import avalanche_internals
    from replay_cli.data.positions import PositionsView

    try:
        if isinstance(held, PositionsView):
            return avalanche_internals.gather(held.positions.source, held.held[index])
        return avalanche_internals.gather(held, index)
    except (TypeError, ValueError):  # an attribute of tensors per sample (DER's logits)
        return None


def _bytes_per_sample(held: Any) -> int:
    fields = stored_fields(held, torch.arange(1))
    if fields is None:  # a dataset tree of a kind the gather does not know: the sample as read
        fields = [f.unsqueeze(0) if isinstance(f, torch.Tensor) else torch.as_tensor([f]) for f in held[0]]
    return sum(int(f.nbytes) for f in fields if isinstance(f, torch.Tensor))
