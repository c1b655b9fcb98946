"""s44 · Distributed data parallelism: gradient accumulation, all-reduce and DDP by hand.

You build
    broadcast_parameters(model, src)   every parameter and buffer copied from rank src
    average_gradients(model)           all-reduce each gradient, divide by the world size
    make_buckets(params, bucket_size)  group the trainable parameters into buckets
    allreduce_buckets(buckets)         one all-reduce per bucket on the flattened gradients
    rank_batches(n, batch_size, rank, world_size, epoch, seed)
                                       this rank's share of each global batch of an epoch
    accumulate_gradients(model, loss_fn, micro_batches)
                                       k micro-batches, one optimizer step's gradient
    train_data_parallel(model, optimizer, loss_fn, x, y, batch_size, epochs, seed, bucket_size)
                                       the whole DDP loop: broadcast, shard, backward, sync, step
Given: init_process (a gloo process group with a timeout), world() (rank, world size).

How it differs from the previous steps
    s30 trained on one process. A bigger batch than fits in memory has two answers that give
    the SAME gradient: gradient accumulation (k small batches one after the other, one step)
    and data parallelism (W processes, each on 1/W of the batch, gradients averaged over the
    network before the step). PyTorch's DistributedDataParallel (DDP) is the second one plus
    engineering; here you write it with torch.distributed collectives on CPU (gloo backend).

The math
    The loss of a batch of B examples is the mean L = (1/B) sum_i l_i. Split it into W
    equal shards of B/W: L = (1/W) sum_r L_r, where L_r is the mean over shard r, so
    grad L = (1/W) sum_r grad L_r. all_reduce(SUM) leaves sum_r g_r on every rank; divide by
    W and every rank holds the full-batch gradient. Every rank started from the same weights
    (broadcast from rank 0) and applies the same optimizer to the same gradient, so the
    weights stay identical without ever being sent again. Gradient accumulation is the same
    sum in time instead of space: backward on L_j / k for each of k equal micro-batches; the
    .grad buffers add up to grad L. Equal shards matter: the mean of unequal shards' means
    is not the batch mean.

    Buckets: one all-reduce per parameter pays the network latency per tensor; one for the
    whole model must wait for the last gradient. DDP groups gradients into buckets of about
    25 MB, flattens each into one buffer, reduces it, and copies the averages back.

Shapes and conventions
    x (N, ...) and y (N, ...) tensors; loss_fn(model(xb), yb) is the MEAN loss over the
    batch. Every collective is called by every rank, in the same order, on tensors of the
    same shape: a rank that skips one, or sends a differently sized tensor, blocks the others
    until the process group's timeout. The process group is the default one (init_process).

You should be able to explain
    - why ranks must start from identical weights and why seeding every rank the same is not
      enough (a checkpoint, dropout masks or rank-dependent code break it): broadcast;
    - why the average (not the sum) of the gradients equals the big-batch gradient, and what
      a sum does to the learning rate;
    - why every rank needs a different slice of one shared shuffle (same seed, not the rank);
    - why a frozen parameter is never reduced and a tied one (GPT's embedding and head) only
      once; what bucket size trades off;
    - when gradient accumulation and data parallelism give the same step (equal shards,
      no batch-dependent layers such as BatchNorm) and what each costs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def init_process(rank: int, world_size: int, init_method: str, timeout_s: float = 60.0) -> None:
    """Given. Join the default gloo process group (init_method "file:///tmp/x" or "env://");
    every collective then fails after timeout_s seconds instead of hanging."""
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout_s))


def world() -> tuple[int, int]:
    """Given. (rank, world size) of the default process group."""
    return dist.get_rank(), dist.get_world_size()


def broadcast_parameters(model: nn.Module, src: int = 0) -> None:
    """Overwrite, in place, every parameter (frozen ones included) and every buffer of model
    with rank src's values (dist.broadcast, in named_parameters / named_buffers order)."""
    raise NotImplementedError("s44 distributed: broadcast each parameter's and buffer's data from src")


def average_gradients(model: nn.Module) -> None:
    """For every parameter whose .grad is not None: all-reduce the sum over ranks, then divide
    by the world size, in place. Parameters without a gradient (frozen) keep .grad None."""
    _, size = world()
    raise NotImplementedError("s44 distributed: all-reduce each existing gradient, then divide by the world size")


def make_buckets(params: Iterable[nn.Parameter],
                 bucket_size: int | None = None) -> list[list[nn.Parameter]]:
    """Group params in order: skip those with requires_grad False and repeats (a tied
    parameter, by identity, counts once); p joins the current bucket when it is empty or its
    total numel + p.numel() <= bucket_size, else p opens a new bucket. None: one bucket."""
    if bucket_size is not None and bucket_size < 1:
        raise ValueError(f"bucket_size must be at least 1 (or None), got {bucket_size}")
    raise NotImplementedError("s44 distributed: walk the trainable, distinct parameters, closing a bucket when it is full")


def allreduce_buckets(buckets: list[list[nn.Parameter]]) -> None:
    """Per bucket, ONE all-reduce: concatenate the flattened gradients (zeros for a .grad
    that is None), all-reduce the sum, divide by the world size, and write each slice back
    into its parameter's .grad (created where it was None) with the parameter's shape."""
    _, size = world()
    raise NotImplementedError("s44 distributed: per bucket: flatten, one all_reduce, divide, copy the slices back")


def rank_batches(n: int, batch_size: int, rank: int, world_size: int, epoch: int,
                 seed: int) -> list[torch.Tensor]:
    """perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)) (the
    same on every rank); global batch s = perm[s*B:(s+1)*B] for s < n // B (the tail is
    dropped); this rank gets its contiguous chunk [rank*B/W:(rank+1)*B/W] of each."""
    if batch_size < 1 or batch_size > n or batch_size % world_size:
        raise ValueError(f"batch_size {batch_size} must be in 1..{n} and divisible by the "
                         f"world size {world_size}, so every rank gets an equal shard")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    raise NotImplementedError("s44 distributed: one shared shuffle per epoch, cut into global batches, take this rank's part")


def accumulate_gradients(model: nn.Module, loss_fn: LossFn,
                         micro_batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Add to .grad the gradient of (1/k) sum_j loss_fn(model(x_j), y_j) over the k
    micro-batches, one backward each (grads are not zeroed here); return that mean loss."""
    if not micro_batches:
        raise ValueError("accumulate_gradients needs at least one micro-batch")
    raise NotImplementedError("s44 distributed: backward on each micro-batch's loss divided by k, sum the losses")


def train_data_parallel(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn,
                        x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int,
                        seed: int = 0, bucket_size: int | None = None) -> list[float]:
    """Broadcast from rank 0, then per epoch and per rank_batches(len(x), batch_size, ...) batch:
    zero the grads, backward on this rank's shard, sync (allreduce_buckets of make_buckets(
    model.parameters(), bucket_size)), step. Returns each step's loss averaged over ranks
    (the full batch's mean loss); a world of one is plain minibatch training."""
    rank, size = world()
    raise NotImplementedError("s44 distributed: broadcast, then shard, backward, all-reduce, step; log the mean loss")
