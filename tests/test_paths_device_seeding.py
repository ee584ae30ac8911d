import numpy as np
import pytest
import torch

from course_utils.device import describe_device, pick_device
from course_utils.errors import ConfigError
from course_utils.paths import data_root, output_dir, repo_root
from course_utils.seeding import seed_everything


def test_data_root_defaults_to_repo_data(monkeypatch):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert data_root() == repo_root() / "data"


def test_data_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path


def test_missing_data_root_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="COURSE_DATA_DIR=.*does not exist.*unset it"):
        data_root()


def test_output_dir_is_created_under_the_env_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path))
    out = output_dir("01_pytorch_basics")
    assert out == tmp_path / "01_pytorch_basics" and out.is_dir()


def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device().type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"


def test_asking_for_a_missing_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
        pick_device("cuda")
    with pytest.raises(ConfigError, match="not a device name"):
        pick_device("gpu0")
    assert pick_device("cpu").type == "cpu"
    assert describe_device(torch.device("cpu")).startswith("cpu (")


def test_seed_everything_repeats_torch_numpy_and_loader_order():
    def draw():
        g = seed_everything(123)
        loader = torch.utils.data.DataLoader(list(range(20)), batch_size=5, shuffle=True, generator=g)
        return torch.rand(3), np.random.rand(3), [b.tolist() for b in loader]

    a, b = draw(), draw()
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    seed_everything(124)
    assert not torch.equal(torch.rand(3), a[0])
    with pytest.raises(TypeError):
        seed_everything("1")
