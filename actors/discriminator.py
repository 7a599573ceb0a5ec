"""RLCF's discriminator: a small language model with a classification head that scores how
much a program looks like a reference solution rather than one of the policy's samples.

Trained alongside the policy, GAN-style: the RL pool's reference solutions are the
positives, the policy's recent samples the negatives (correct samples too: the question
is "written by a person or by the policy", which is what makes its score a reward the
policy cannot saturate by passing tests alone).  Schedule (`reward.discriminator`):
every `train_every` iterations, after the learner's update, the iteration's samples join
a bounded buffer of negatives and the discriminator takes `steps` optimizer steps on
balanced minibatches (half references, half samples).  A fixed share of problems
(`heldout_fraction`, chosen by a hash of the problem id, so the same ones across runs)
never trains it; its accuracy on their (reference, sample) pairs is logged.

Input: the problem statement, optionally the reference program (`with_reference`), then
the candidate program; truncated from the left, so the program survives.  The model is
`model` (a Hugging Face causal LM directory; by default the policy's starting model) with
a fresh one-logit head.  It is a plain torch model: it never joins the policy's DeepSpeed
engines, and runs as its own Ray actor with its own CPUs/GPUs (`DiscriminatorPool`).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from core.settings import ConfigSection, rng


@dataclass
class DiscriminatorConfig(ConfigSection):
    """Knobs of RLCF's discriminator (read when a reward term uses it)."""

    model: str | None = None  # a Hugging Face causal LM directory; None: the policy's starting model
    with_reference: bool = True
    lr: float = field(default=1e-4, metadata=rng(0, exclusive_min=True))
    batch_size: int = field(default=16, metadata=rng(2))
    train_every: int = field(default=1, metadata=rng(1))
    steps: int = field(default=4, metadata=rng(1))
    buffer_size: int = field(default=512, metadata=rng(2))
    heldout_fraction: float = field(default=0.1, metadata=rng(0, 0.9))
    max_tokens: int = field(default=384, metadata=rng(16))
    num_cpus: float = field(default=1.0, metadata=rng(0))
    num_gpus: float = field(default=0.0, metadata=rng(0))
    max_restarts: int = field(default=3, metadata=rng(0))  # dead actor -> a new one from the last checkpoint


@dataclass(frozen=True)
class Candidate:
    """One program to score or learn from, with what the discriminator sees beside it."""

    problem_id: str
    statement: str
    reference: str
    program: str


def is_heldout(problem_id: str, fraction: float) -> bool:
    """Whether a problem's pairs are kept out of training (stable across runs and resumes)."""
    digest = hashlib.sha256(problem_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < fraction


class Discriminator:
    """The model, its optimizer and its data; the Ray actor's body (also used in-process by tests)."""

    def __init__(self, cfg: DiscriminatorConfig, model_dir: str, seed: int = 0) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.manual_seed(seed)
        self.cfg = cfg
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.truncation_side = "left"  # the program is at the end: it survives
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, dtype=torch.float32)
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr)
        self.rng = random.Random(seed)
        self.positives: dict[str, Candidate] = {}  # one reference per problem seen
        self.negatives: list[Candidate] = []  # the newest buffer_size samples
        self.updates = 0

    def text(self, c: Candidate) -> str:
        reference = f"# reference solution\n{c.reference}\n" if self.cfg.with_reference else ""
        return f"{c.statement}\n{reference}# candidate\n{c.program}"

    def logits(self, candidates: Sequence[Candidate]):
        enc = self.tokenizer([self.text(c) for c in candidates], return_tensors="pt", padding=True,
                             truncation=True, max_length=self.cfg.max_tokens)
        return self.model(**enc).logits.squeeze(-1)

    def score(self, candidates: Sequence[Candidate], chunk: int = 32) -> list[float]:
        """P(reference-like) for each candidate, in order (eval mode, no gradient)."""
        import torch

        self.model.eval()
        out: list[float] = []
        with torch.no_grad():
            for i in range(0, len(candidates), chunk):
                out += torch.sigmoid(self.logits(candidates[i:i + chunk])).tolist()
        return out

    def observe(self, references: Sequence[Candidate], samples: Sequence[Candidate]) -> None:
        """References of the batch's problems become positives, its samples negatives."""
        for ref in references:
            self.positives.setdefault(ref.problem_id, ref)
        self.negatives = (self.negatives + list(samples))[-self.cfg.buffer_size:]

    def _split(self, heldout: bool) -> tuple[list[Candidate], list[Candidate]]:
        keep = lambda c: is_heldout(c.problem_id, self.cfg.heldout_fraction) == heldout  # noqa: E731
        return [c for c in self.positives.values() if keep(c)], [c for c in self.negatives if keep(c)]

    def train(self) -> dict[str, float]:
        """`steps` optimizer steps of binary cross-entropy on balanced minibatches from the
        training problems; the mean loss and accuracy over them (empty when a side is empty)."""
        import torch
        import torch.nn.functional as F

        positives, negatives = self._split(heldout=False)
        if not positives or not negatives:
            return {}
        half = self.cfg.batch_size // 2
        self.model.train()
        losses, correct = [], []
        for _ in range(self.cfg.steps):
            batch = self.rng.choices(positives, k=half) + self.rng.choices(negatives, k=half)
            labels = torch.tensor([1.0] * half + [0.0] * half)
            logits = self.logits(batch)
            loss = F.binary_cross_entropy_with_logits(logits, labels)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
            correct.append(float(((logits.detach() > 0).float() == labels).float().mean()))
        self.updates += self.cfg.steps
        return {"loss": sum(losses) / len(losses), "train_accuracy": sum(correct) / len(correct)}

    def heldout_accuracy(self) -> float | None:
        """Balanced accuracy at P = 0.5 on the held-out problems' references and samples
        (the mean of the two sides' accuracies; None until both sides have examples)."""
        positives, negatives = self._split(heldout=True)
        if not positives or not negatives:
            return None
        pos, neg = self.score(positives), self.score(negatives)
        return 0.5 * (sum(p > 0.5 for p in pos) / len(pos) + sum(n <= 0.5 for n in neg) / len(neg))

    def save(self, path: str) -> str:
        import torch

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "rng": self.rng.getstate(), "torch_rng": torch.get_rng_state(), "updates": self.updates,
                    "positives": list(self.positives.values()), "negatives": self.negatives}, path)
        return path

    def load(self, path: str) -> None:
        import torch

        state = torch.load(path, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.updates = state["updates"]
        self.positives = {c.problem_id: c for c in state["positives"]}
        self.negatives = list(state["negatives"])

    def set_threads(self, threads: int) -> int:
        import torch

        torch.set_num_threads(max(1, threads))
        return torch.get_num_threads()


def check_room(cfg: DiscriminatorConfig, available: dict[str, float]) -> None:
    """Fail at once, naming the key, rather than wait forever for an actor Ray cannot place
    (the rollout actors and the learner have taken their share by the time it starts)."""
    for key, resource in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        wanted, free = getattr(cfg, key), available.get(resource, 0.0)
        if wanted > free + 1e-9:
            raise ValueError(f"reward.discriminator.{key}: {wanted:g} {resource}s asked, but the Ray cluster has "
                             f"{free:g} free after the rollout actors and the learner; lower it (0 shares the "
                             f"cores) or add nodes")


class DiscriminatorPool:
    """The discriminator as one Ray actor with its own resources; the trainer's handle.

    A dead actor (its process killed, its node lost) is replaced, up to `max_restarts`
    times, by a new one restored from the last state saved or loaded (the run's last
    checkpoint), and the call is made again; without one it starts afresh from the
    model.  Ray's own restart would rerun the constructor with the first weights, silently
    dropping everything learned, so the pool does it and says what came back: updates
    after that checkpoint are lost, and `restarts` counts them."""

    def __init__(self, cfg: DiscriminatorConfig, model_dir: str, seed: int = 0, log=print) -> None:
        import ray

        check_room(cfg, ray.available_resources())
        self.cfg, self.model_dir, self.seed, self.log = cfg, model_dir, seed, log
        self.restarts, self.max_restarts = 0, cfg.max_restarts  # read up front: it is a run's setting
        self.last_state: str | None = None
        self.actor = self._start()

    def _start(self):
        import ray

        remote = ray.remote(Discriminator).options(num_cpus=self.cfg.num_cpus, num_gpus=self.cfg.num_gpus)
        actor = remote.remote(self.cfg, self.model_dir, self.seed)
        ray.get(actor.set_threads.remote(max(1, int(self.cfg.num_cpus))))
        if self.last_state is not None:
            ray.get(actor.load.remote(self.last_state))
        return actor

    def _run(self, calls):
        """`calls(actor)` -> its result; on the actor's death, a new actor and the whole
        sequence again (a half-done observe-then-train is redone, not half-kept)."""
        import ray
        from ray.exceptions import RayActorError

        while True:
            try:
                return calls(self.actor)
            except RayActorError as exc:
                if self.restarts >= self.max_restarts:
                    raise RuntimeError(f"the discriminator actor died {self.restarts + 1} times "
                                       f"(reward.discriminator.max_restarts {self.max_restarts}): {exc}") from exc
                self.restarts += 1
                ray.kill(self.actor)
                source = self.last_state or f"{self.model_dir} (no checkpoint yet: afresh)"
                self.log(f"discriminator: actor died; restart {self.restarts} of {self.max_restarts} from "
                         f"{source}")
                self.actor = self._start()

    def score(self, candidates: Sequence[Candidate]) -> list[float]:
        import ray

        return self._run(lambda actor: ray.get(actor.score.remote(list(candidates))))

    def observe_and_train(self, references: Sequence[Candidate], samples: Sequence[Candidate],
                          train: bool) -> dict[str, float]:
        """Add the batch, train when the schedule says so; the metrics to log."""
        import ray

        def calls(actor):
            ray.get(actor.observe.remote(list(references), list(samples)))
            stats = ray.get(actor.train.remote()) if train else {}
            accuracy = ray.get(actor.heldout_accuracy.remote())
            return {**stats, **({"heldout_accuracy": accuracy} if accuracy is not None else {})}

        return {**self._run(calls), "restarts": float(self.restarts)}

    def save(self, path: str) -> str:
        import ray

        saved = self._run(lambda actor: ray.get(actor.save.remote(path)))
        self.last_state = saved
        return saved

    def load(self, path: str) -> None:
        import ray

        self._run(lambda actor: ray.get(actor.load.remote(path)))
        self.last_state = path

    def close(self) -> None:
        import ray

        ray.kill(self.actor)
