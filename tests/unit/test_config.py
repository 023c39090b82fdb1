import re
from pathlib import Path

import pytest

from gowa_py.config import FIELDS, ConfigError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "gowa.example.toml"


def test_defaults():
    settings = load_settings({}, {})
    assert settings.port == 3000
    assert settings.data_dir == "./data"
    assert settings.bind_host == "127.0.0.1"


def test_precedence_flags_over_env_over_file(tmp_path):
    file = tmp_path / "gowa.toml"
    file.write_text('[gateway]\nport = 4000\ndata_dir = "/file"\nlog_level = "DEBUG"\n')
    env = {"GOWA_PORT": "5000", "GOWA_DATA_DIR": "/env"}
    settings = load_settings({"port": 6000, "data_dir": None}, env, file)
    assert (settings.port, settings.data_dir, settings.log_level) == (6000, "/env", "DEBUG")


def test_config_file_from_env(tmp_path):
    file = tmp_path / "gowa.toml"
    file.write_text("port = 4100\n")
    assert load_settings({}, {"GOWA_CONFIG": str(file)}).port == 4100


def test_unknown_file_setting_is_named(tmp_path):
    file = tmp_path / "gowa.toml"
    file.write_text("[gateway]\nprot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings({}, {}, file)


@pytest.mark.parametrize(
    "env",
    [
        {"GOWA_PORT": "abc"},
        {"GOWA_PORT": "70000"},
        {"GOWA_BASIC_AUTH": "nopassword"},
        {"GOWA_KSM": "on"},
        {"GOWA_KSM_PAGES_TO_SCAN": "0"},
        {"GOWA_WORKER_TIMER_SLACK_MS": "-1"},
        {"GOWA_WORKER_TIMER_SLACK_MS": "1001"},
        {"GOWA_START_MIN_AVAILABLE_MB": "-1"},
    ],
)
def test_bad_values_are_config_errors(env):
    with pytest.raises(ConfigError):
        load_settings({}, env)


def test_start_min_available_mb():
    assert load_settings({}, {}).start_min_available_mb == 1024
    assert load_settings({}, {"GOWA_START_MIN_AVAILABLE_MB": "0"}).start_min_available_mb == 0
    assert (
        load_settings({}, {"GOWA_START_MIN_AVAILABLE_MB": "512.5"}).start_min_available_mb == 512.5
    )


def test_credentials_allow_other_hosts():
    settings = load_settings({"host": "0.0.0.0"}, {"GOWA_API_KEY": "k"})
    assert settings.bind_host == "0.0.0.0"
    assert load_settings({"host": "0.0.0.0"}, {}).bind_host == "127.0.0.1"


def test_basic_auth_pairs():
    settings = load_settings({}, {"GOWA_BASIC_AUTH": "a:1,b:2:3"})
    assert settings.basic_auth_pairs == [("a", "1"), ("b", "2:3")]


def test_example_file_documents_every_setting_and_loads():
    text = EXAMPLE.read_text()
    documented = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, re.M))
    assert set(FIELDS) <= documented, set(FIELDS) - documented
    load_settings({}, {}, EXAMPLE)
