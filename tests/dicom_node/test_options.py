"""Node options: Settings defaults, command-line overrides, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxr_pneumonia.config import Settings
from cxr_pneumonia.dicom_node.options import ConfigError, Destination, NodeOptions, RetryPolicy


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **values)  # type: ignore[call-arg]


def test_destination_parses_ae_host_port() -> None:
    assert Destination.parse("PACS@pacs.example.org:104") == Destination("PACS", "pacs.example.org", 104)
    assert Destination.parse("ORTHANC@[::1]:4242") == Destination("ORTHANC", "::1", 4242)
    assert str(Destination.parse("A@h:1")) == "A@h:1"


@pytest.mark.parametrize(
    "text", ["PACS@host", "host:104", "@host:104", "PACS@:104", "PACS@host:port", "PACS@host:0", "PACS@host:70000",
             "A_TITLE_LONGER_THAN_16@host:104", "BACK\\SLASH@host:104"],
)  # fmt: skip
def test_malformed_destinations_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        Destination.parse(text)


def test_retry_backs_off_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_seconds=5, max_seconds=60, max_attempts=0)
    assert [policy.delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert policy.delay(10_000) == 60
    assert not policy.gives_up(10_000)
    assert RetryPolicy(1, 2, max_attempts=3).gives_up(3)
    assert not RetryPolicy(1, 2, max_attempts=3).gives_up(2)


def test_options_come_from_settings(tmp_path: Path) -> None:
    options = NodeOptions.from_settings(
        settings(tmp_path, dicom_ae_title="NODE", dicom_port=11113, dicom_accept_aes=" PACS1, PACS2 ,",
                 dicom_destination="PACS@10.0.0.5:104", dicom_retry_max_attempts=7, dicom_keep_received=True)
    )  # fmt: skip
    assert options.ae_title == "NODE"
    assert options.port == 11113
    assert options.accept_aes == ("PACS1", "PACS2")
    assert options.destination == Destination("PACS", "10.0.0.5", 104)
    assert options.retry.max_attempts == 7
    assert options.keep_received is True
    assert options.refusal_sr is False
    assert options.spool_dir == tmp_path / "dicom"  # under the data directory by default


def test_command_line_overrides_win_and_none_means_not_given(tmp_path: Path) -> None:
    base = settings(tmp_path, dicom_ae_title="NODE", dicom_destination="PACS@h:104", dicom_refusal_sr=True)
    options = NodeOptions.from_settings(
        base, ae_title="OTHER", destination="ARCHIVE@h2:11112", accept_aes=("X",), refusal_sr=False,
        retry_initial_seconds=1.0, keep_received=None, port=None,
    )  # fmt: skip
    assert (options.ae_title, str(options.destination), options.accept_aes) == (
        "OTHER",
        "ARCHIVE@h2:11112",
        ("X",),
    )
    assert options.refusal_sr is False
    assert options.retry.initial_seconds == 1.0
    assert options.port == 11112 and options.keep_received is False


@pytest.mark.parametrize(
    "override",
    [{"ae_title": ""}, {"ae_title": "SEVENTEEN_CHARS_X"}, {"port": 70000}, {"accept_aes": ("OK", "BAD\\AE")},
     {"retry_initial_seconds": 0.0}, {"retry_initial_seconds": 10.0, "retry_max_seconds": 5.0},
     {"retry_max_attempts": -1}, {"no_such_option": 1}],
)  # fmt: skip
def test_options_that_cannot_work_are_refused(tmp_path: Path, override: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        NodeOptions.from_settings(settings(tmp_path), **override)


def test_a_dicomweb_destination_is_a_url_and_the_only_destination(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8042/dicom-web"
    assert NodeOptions.from_settings(settings(tmp_path), destination_dicomweb=url).destination_dicomweb == url
    from_env = NodeOptions.from_settings(settings(tmp_path, dicom_destination_dicomweb=url))
    assert from_env.destination_dicomweb == url and from_env.destination is None
    with pytest.raises(ConfigError, match="not both"):
        NodeOptions.from_settings(settings(tmp_path), destination="PACS@h:104", destination_dicomweb=url)
    with pytest.raises(ConfigError, match="http"):
        NodeOptions.from_settings(settings(tmp_path), destination_dicomweb="pacs:8042")
