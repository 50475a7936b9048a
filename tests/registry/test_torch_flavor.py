"""The pytorch flavor: state dict loaded weights-only, architecture rebuilt by a registered
builder; equal outputs after the round trip, locally and over HTTP, and no code run on load."""

from __future__ import annotations

import hashlib
import io

import pytest

from opsloop.registry import FLAVORS, torch_builder
from opsloop.registry.flavors import infer_flavor
from opsloop.registry.torch_flavor import _builders
from opsloop.store import TamperedArtifactError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


@torch_builder("registry-tests-scorer")
def scorer(n_in: int, hidden: list[int], dropout: float = 0.1) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    width = n_in
    for size in hidden:
        layers += [
            torch.nn.Linear(width, size),
            torch.nn.BatchNorm1d(size),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
        ]
        width = size
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))


@pytest.fixture
def trained():
    """A scorer after a few training steps: weights and BatchNorm running statistics moved."""
    torch.manual_seed(0)
    net = scorer(4, [16, 8])
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(64, 4)
    y = x[:, :1] * 2.0 - x[:, 1:2]
    for _ in range(5):
        optimiser.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        optimiser.step()
    return net.eval()


def test_pytorch_is_a_flavor_and_modules_are_never_pickled():
    assert "pytorch" in FLAVORS
    assert infer_flavor(torch.nn.Linear(2, 1)) == "pytorch"


def test_a_module_round_trips_with_equal_outputs(registry, trained):
    version = registry.register("scorer", trained, metrics={"mse": 0.5})
    assert version.flavor == "pytorch"
    loaded = registry.load("scorer")
    assert loaded is not trained and not loaded.training
    assert loaded.state_dict().keys() == trained.state_dict().keys()
    for key, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    running_mean = trained.state_dict()["1.running_mean"]
    assert not torch.equal(running_mean, torch.zeros_like(running_mean))  # it was trained
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x))


def test_a_module_round_trips_through_the_server(registry, remote, trained):
    version = remote.register("scorer", trained)
    assert registry.get_version("scorer").artifact_sha256 == version.artifact_sha256
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(remote.load("scorer")(x), trained(x))
        assert torch.equal(registry.load("scorer")(x), trained(x))


def test_tampered_weights_are_refused_with_both_hashes(registry, trained):
    version = registry.register("scorer", trained)
    path = registry.artifacts.path(version.artifact_sha256)
    data = bytearray(registry.artifacts.fs.cat(path))
    data[-200] ^= 0xFF  # one flipped byte inside the archive
    registry.artifacts.fs.pipe(path, bytes(data))
    found = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(
        TamperedArtifactError,
        match=f"expected sha256 {version.artifact_sha256}, found sha256 {found}",
    ):
        registry.load("scorer")


class _WritesAFile:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_recorded_archive_with_code_in_it_is_still_not_run(registry, tmp_path):
    marker = tmp_path / "code-ran"
    buffer = io.BytesIO()
    torch.save(
        {"format": "opsloop.pytorch.state-dict/1", "state_dict": _WritesAFile(marker)}, buffer
    )
    sha = registry.artifacts.put_bytes(buffer.getvalue())
    registry.register("evil", artifact_sha256=sha, flavor="pytorch")
    with pytest.raises(ValueError, match=r"torch.load\(weights_only=True\) refused the artifact"):
        registry.load("evil")
    assert not marker.exists()


def test_modules_that_cannot_be_rebuilt_are_refused_at_registration(registry, trained):
    with pytest.raises(ValueError, match="this Linear was not made by a registered builder"):
        registry.register("plain", torch.nn.Linear(3, 1))
    changed = scorer(4, [16])
    changed[0] = torch.nn.Linear(4, 16, bias=False)
    with pytest.raises(ValueError, match=r"builds a different architecture \(missing \['0.bias'\]"):
        registry.register("changed", changed)
    wider = scorer(4, [16])
    wider[4] = torch.nn.Linear(16, 2)
    with pytest.raises(ValueError, match=r"other shape or dtype \['4.bias', '4.weight'\]"):
        registry.register("wider", wider)
    with pytest.raises(TypeError, match="must be JSON values"):
        registry.register("tensor-arg", scorer(4, [16], dropout=torch.tensor(0.1)))
    assert registry.list_models().empty


def test_loading_needs_the_builder_in_this_process(registry, trained, monkeypatch):
    registry.register("scorer", trained)
    monkeypatch.delitem(_builders, "registry-tests-scorer")
    with pytest.raises(ValueError, match="builder 'registry-tests-scorer' is not registered"):
        registry.load("scorer")


def test_a_builder_name_belongs_to_one_function():
    with pytest.raises(ValueError, match="'registry-tests-scorer' is already registered by"):
        torch_builder("registry-tests-scorer")(lambda: torch.nn.Linear(1, 1))
    with pytest.raises(TypeError, match=r"must return a torch\.nn\.Module, got int"):
        torch_builder("registry-tests-not-a-module")(lambda: 3)()


def test_one_file_imported_under_two_module_names_keeps_its_builder(tmp_path, monkeypatch):
    """A file imported twice under different names (a script that is also imported as a
    module; pytest's importlib mode) registers the same builder twice: allowed. A different
    function from another file under the same name is still refused."""
    import importlib.util

    source = tmp_path / "two_names.py"
    source.write_text(
        "import torch\n"
        "from opsloop.registry import torch_builder\n\n"
        "@torch_builder('registry-tests-two-names')\n"
        "def build(n):\n"
        "    return torch.nn.Linear(n, 1)\n"
    )
    monkeypatch.delitem(_builders, "registry-tests-two-names", raising=False)
    loaded = []
    for name in ("first_name", "second_name"):
        spec = importlib.util.spec_from_file_location(name, source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded.append(module)
    assert _builders["registry-tests-two-names"].__module__ == "second_name"
    assert loaded[1].build(3).in_features == 3
    other = tmp_path / "other.py"
    other.write_text(source.read_text())
    spec = importlib.util.spec_from_file_location("third_name", other)
    with pytest.raises(ValueError, match="'registry-tests-two-names' is already registered by"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    monkeypatch.delitem(_builders, "registry-tests-two-names")
