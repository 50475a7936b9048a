"""Differentially private training (DP-SGD) as the defence against membership inference.

DP-SGD (Abadi et al., 2016) bounds what one training row can change: each step it samples
a batch (every row with probability ``q``, Poisson sampling), clips each row's gradient to
norm ``C`` (``max_grad_norm``), adds Gaussian noise of standard deviation ``σC``
(``noise_multiplier`` σ) to their sum and steps. The trained weights are then
(ε, δ)-differentially private, with ε from a privacy accountant over σ, ``q`` and the number
of steps. Opacus (1.6, with torch 2.13) does the per-row gradients, clipping, noise and
accounting here; ε comes from its accountant (``"rdp"``: Rényi DP of the subsampled Gaussian
mechanism, Mironov et al. 2019, turned into (ε, δ) by Balle et al. 2020's conversion;
``"prv"``: the tighter numerical composition of Gopi et al. 2021).

ε bounds every membership attack, not just the ones measured: an attacker's advantage
(TPR − FPR on any one row) is at most :func:`advantage_bound` ``= (e^ε − 1 + 2δ) / (e^ε + 1)``
(Kairouz et al., 2015; Humphries et al., 2023).

:func:`private_training` re-initialises a copy of a trained network, trains it with DP-SGD,
and reports clean accuracy and the threshold attacks' membership advantage and AUC for the
network given and the private one (a :class:`~.defence_effect.DefenceEffect`, with ε in its
settings). Noise is drawn from torch's generator seeded by ``seed``, which makes runs
repeatable and is not a cryptographically secure source (Opacus' ``secure_mode`` is): the
numbers measure the defence; a release that promises ε to others needs secure noise.
"""

from __future__ import annotations

import math
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from opsloop.learn.feature_rows import check_model_width
from opsloop.learn.robustness.adversarial_training import _pair, _positive_int
from opsloop.learn.robustness.defence_effect import DefenceEffect
from opsloop.learn.robustness.defensive_distillation import fresh_copy
from opsloop.learn.robustness.membership import threshold_attack
from opsloop.learn.robustness.torch_classifier import TorchClassifier
from opsloop.learn.torch_import import import_torch

ACCOUNTANTS = ("rdp", "prv")
OPACUS_HINT = "pip install 'opsloop[privacy]'"


def import_opacus(purpose: str = "differentially private training") -> ModuleType:
    """The ``opacus`` module, or an ImportError saying that ``purpose`` needs it.

    >>> import_opacus().__version__ >= "1.6"
    True
    """
    try:
        import opacus
    except ImportError as error:  # pragma: no cover - opacus is installed where tests run
        raise ImportError(f"{purpose} needs Opacus: {OPACUS_HINT}") from error
    return opacus


def advantage_bound(epsilon: float, delta: float) -> float:
    """The largest membership advantage (TPR − FPR) any attack has on an (ε, δ)-DP model.

    From TPR ≤ e^ε·FPR + δ and 1 − FPR ≤ e^ε·(1 − TPR) + δ, the two conditions of
    (ε, δ)-DP on a test of "member" against "not member".

    >>> round(advantage_bound(1.0, 0.0), 4)  # (e - 1) / (e + 1)
    0.4621
    >>> advantage_bound(math.inf, 1e-5)
    1.0
    """
    if math.isinf(epsilon):
        return 1.0
    return min(1.0, (math.expm1(epsilon) + 2 * delta) / (math.exp(epsilon) + 1))


def dp_epsilon(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp"
) -> float:
    """ε of ``steps`` DP-SGD steps at ``sample_rate`` and ``noise_multiplier``, at ``delta``,
    by Opacus' accountant.

    With ``sample_rate=1`` (full batches) each step is the Gaussian mechanism, whose Rényi DP
    of order α is α / (2σ²); :func:`private_training`'s tests derive ε from that by hand.

    >>> round(dp_epsilon(1.0, 0.01, 1000, 1e-5), 3)
    2.101
    """
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
    import_opacus("the privacy accountant")
    from opacus.accountants import create_accountant

    book = create_accountant(accountant)
    book.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(book.get_epsilon(delta=delta))


def _dp_sgd(
    torch: ModuleType,
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    noise_multiplier: float | None,
    target_epsilon: float | None,
    max_grad_norm: float,
    delta: float,
    epochs: int,
    batch_size: int,
    lr: float,
    accountant: str,
) -> tuple[Any, float, float, int, float]:
    """Train ``model`` in place with DP-SGD; the model, σ, the sample rate, the steps, ε."""
    from opacus import PrivacyEngine
    from opacus.accountants.utils import get_noise_multiplier

    dataset = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    sample_rate, steps = 1 / len(loader), epochs * len(loader)
    if target_epsilon is not None:
        with warnings.catch_warnings():
            # the search tries noise levels too low to matter; the ε reported is recomputed
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
            noise_multiplier = get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=accountant,
            )
    optimiser = torch.optim.SGD(model.parameters(), lr=lr)
    with warnings.catch_warnings():
        # Opacus warns that its noise is not from a secure generator (see the module) and
        # that a backward hook fires for outputs when the inputs need no gradient.
        warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
        warnings.filterwarnings("ignore", message=".*Full backward hook.*")
        engine = PrivacyEngine(accountant=accountant)
        private, optimiser, loader = engine.make_private(
            module=model,
            optimizer=optimiser,
            data_loader=loader,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
        )
        private.train()
        for _ in range(epochs):
            for inputs, labels in loader:
                optimiser.zero_grad()
                # the mean over the rows drawn; an empty draw still steps (noise only)
                loss = torch.nn.functional.cross_entropy(private(inputs), labels, reduction="sum")
                (loss / max(len(labels), 1)).backward()
                optimiser.step()
        epsilon = float(engine.get_epsilon(delta))
    return private._module.eval(), float(noise_multiplier), sample_rate, steps, epsilon


def private_training(
    model: Any,
    train: Any,
    test: Any,
    *,
    noise_multiplier: float | None = 1.0,
    target_epsilon: float | None = None,
    max_grad_norm: float = 1.0,
    delta: float = 1e-5,
    epochs: int = 30,
    batch_size: int = 128,
    lr: float = 1.0,
    accountant: str = "rdp",
    seed: int = 0,
) -> DefenceEffect:
    """Train a re-initialised copy of a torch classifier with DP-SGD; measure before and after.

    Parameters
    ----------
    model
        A trained ``torch.nn.Module`` returning logits, trained on ``train`` without privacy:
        the "before". It is not changed; its copy is re-initialised from ``seed`` (a model
        fine-tuned privately from weights that saw the data would not be private).
    train, test
        Pairs ``(X, y)`` with ``y`` the class index: the training rows (the members) and
        held-out rows from the same population (the non-members, and the accuracy's rows).
    noise_multiplier, target_epsilon
        σ, the noise's standard deviation over the clipping norm; or ``target_epsilon``
        (with ``noise_multiplier=None``) to have Opacus find the σ that spends that ε.
    max_grad_norm
        ``C``, the norm each row's gradient is clipped to.
    delta
        The δ of the guarantee; keep it well below 1 / (rows of ``train``).
    epochs, batch_size, lr
        Passes over ``train``; the expected batch (the sample rate is 1 / the number of
        batches of that size, as Opacus sets it); SGD's learning rate.
    accountant
        ``"rdp"`` or ``"prv"`` (see the module).
    seed
        Seeds the copy's initial weights, the batches and the noise (torch's global
        generator is left as it was).

    Measures: ``clean accuracy`` on ``test``, and the ``membership advantage`` and ``AUC`` of
    the loss- and confidence-threshold attacks (:func:`~.membership.threshold_attack`, members
    ``train``, non-members ``test``). Settings: σ, ``C``, the sample rate, steps, δ, ε, the
    accountant, and ``advantage_bound`` (the most any attack gets, from ε and δ).

    >>> from sklearn.datasets import load_digits
    >>> from opsloop.learn.mlp import mlp
    >>> from opsloop.learn.robustness.defensive_distillation import train_at_temperature
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16).astype("float32")[np.random.default_rng(0).permutation(len(X))]
    >>> y = y[np.random.default_rng(0).permutation(len(y))]
    >>> model = train_at_temperature(mlp([64, 64, 10]), X[:900], y[:900], temperature=1.0,
    ...                              epochs=60, lr=0.01)
    >>> effect = private_training(model, (X[:900], y[:900]), (X[900:], y[900:]),
    ...                           noise_multiplier=2.0, epochs=30, batch_size=128)
    >>> effect.to_frame()[["before", "after"]].round(3).values[:2].tolist()
    [[0.975, 0.932], [0.095, 0.026]]
    >>> round(dict(effect.settings)["epsilon"], 2)
    5.2

    Clean accuracy, then the loss attack's advantage: four points of accuracy take the
    advantage from 0.095 down to chance (about 0.064 at most for 900 and 897 rows).
    """
    torch = import_torch("differentially private training")
    import_opacus()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    X_train, y_train = _pair("train", train)
    X_test, y_test = _pair("test", test)
    check_model_width("train: X", X_train, model)
    check_model_width("test: X", X_test, model)
    if (noise_multiplier is None) == (target_epsilon is None):
        raise ValueError("give noise_multiplier or target_epsilon (with noise_multiplier=None)")
    for name, value in (
        ("noise_multiplier", noise_multiplier),
        ("target_epsilon", target_epsilon),
        ("max_grad_norm", max_grad_norm),
        ("lr", lr),
    ):
        if value is not None and not (
            isinstance(value, int | float) and value > 0 and math.isfinite(value)
        ):
            raise ValueError(f"{name} must be finite and above 0, got {value!r}")
    if not (isinstance(delta, int | float) and 0 < delta < 1):
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
    _positive_int("epochs", epochs)
    _positive_int("batch_size", batch_size)
    from opacus.validators import ModuleValidator

    start = fresh_copy(model, seed).train()
    problems = ModuleValidator.validate(start, strict=False)
    if problems:
        raise ValueError(f"model: Opacus cannot train it privately: {problems[0]}")

    def measure(network: Any) -> list[float]:
        answering = TorchClassifier(network)
        values = [float(np.mean(answering.predict(X_test) == y_test))]
        for score in ("loss", "confidence"):
            attack = threshold_attack(answering, (X_train, y_train), (X_test, y_test), score)
            values += [attack.advantage, attack.auc]
        return values

    names = ["clean accuracy"]
    for score in ("loss", "confidence"):
        names += [
            f"membership advantage ({score} threshold)",
            f"membership AUC ({score} threshold)",
        ]
    before = measure(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        defended, sigma, sample_rate, steps, epsilon = _dp_sgd(
            torch,
            start,
            X_train,
            y_train,
            noise_multiplier=noise_multiplier,
            target_epsilon=target_epsilon,
            max_grad_norm=float(max_grad_norm),
            delta=float(delta),
            epochs=epochs,
            batch_size=batch_size,
            lr=float(lr),
            accountant=accountant,
        )
    bound = advantage_bound(epsilon, delta)
    return DefenceEffect(
        defence="differentially private training",
        settings=(
            ("noise_multiplier", sigma),
            ("max_grad_norm", float(max_grad_norm)),
            ("sample_rate", sample_rate),
            ("steps", steps),
            ("delta", float(delta)),
            ("epsilon", epsilon),
            ("accountant", accountant),
            ("advantage_bound", bound),
            ("epochs", epochs),
            ("batch_size", batch_size),
            ("lr", float(lr)),
        ),
        measures=tuple(names),
        before=tuple(before),
        after=tuple(measure(defended)),
        note=(
            f"DP-SGD (Opacus): ({epsilon:.3g}, {delta:g})-differentially private by the "
            f"{accountant} accountant over {steps} steps at sample rate {sample_rate:.3g}, "
            f"so no membership attack has an advantage above {bound:.3g}; the model before "
            "is not private (ε = ∞)."
        ),
        model=defended,
    )
