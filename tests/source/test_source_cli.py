"""`python -m orchestrator.source upload` hands a CSV to proxies and says what it did, or why not."""
import csv
import json
import socket
import subprocess
import sys

import pytest
from proxy_builders import MODEL_ID, PRICE, normalised, projection_policy_for, source_mapping, source_rows

from orchestrator.hashing.rows import row_hashes
from orchestrator.proxy.store import Store
from orchestrator.proxy.vault import Vault
from orchestrator.source.cli import main


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def map_args(columns):
    return [arg for column, standard in source_mapping(columns).items() for arg in ("--map", f"{column}={standard}")]


def test_upload_hands_the_csv_to_every_proxy_given(columns, serve, tmp_path, capsys, signed):
    a, b = serve(Vault(Store(":memory:"))), serve(Vault(Store(":memory:")))
    path = write_csv(tmp_path / "clinic.csv", source_rows(columns, range(30)))
    code = main(["upload", "--proxy", a.url, "--proxy", b.url, *signed, "--min-price", str(PRICE),
                 "--csv", path, *map_args(columns), "--ignore", "Patient"])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [f"{a.url}: 30 rows stored, row ids 1..30",
                                                    f"{b.url}: 30 rows stored, row ids 1..30"]
    assert a.health() == b.health() == 30
    assert a.listings()[0].fields == tuple(sorted(columns))


def test_upload_reads_the_mapping_from_a_file_and_prints_json_on_request(columns, serve, tmp_path, capsys, signed):
    proxy = serve(Vault(Store(":memory:")))
    path = write_csv(tmp_path / "clinic.csv", source_rows(columns, range(3)))
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"mapping": source_mapping(columns), "ignored": ["Patient"]}))
    assert main(["upload", "--proxy", proxy.url, *signed, "--min-price", "1", "--csv", path,
                 "--mapping-file", str(mapping), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {proxy.url: [1, 2, 3]}


def test_an_unmapped_column_is_reported_and_nothing_is_stored(columns, serve, tmp_path, capsys, signed):
    proxy = serve(Vault(Store(":memory:")))
    path = write_csv(tmp_path / "clinic.csv", source_rows(columns, range(3)))
    code = main(["upload", "--proxy", proxy.url, *signed, "--min-price", "1", "--csv", path,
                 *map_args(columns)])
    assert code == 1
    assert "row 0, column 'Patient': is neither mapped to a standard field nor ignored" in capsys.readouterr().err
    assert proxy.health() == 0


def test_a_missing_csv_file_is_reported(tmp_path, capsys, signed):
    code = main(["upload", "--proxy", "http://127.0.0.1:9", *signed, "--min-price", "1",
                 "--csv", str(tmp_path / "absent.csv"), "--map", "a=b"])
    assert code == 1 and "absent.csv" in capsys.readouterr().err


def test_the_help_explains_mapping_and_cells():
    result = subprocess.run([sys.executable, "-m", "orchestrator.source", "upload", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    for words in ("--proxy", "--map", "--ignore", "--min-price", "empty", "category"):
        assert words in result.stdout


def test_a_subcommand_is_required(capsys):
    with pytest.raises(SystemExit) as done:
        main([])
    assert done.value.code == 2


def test_hash_key_makes_a_new_secret_key_file_and_never_overwrites_one(tmp_path, capsys):
    path = tmp_path / "row-hash.key"
    assert main(["hash-key", "--out", str(path)]) == 0
    key = path.read_text().strip()
    assert len(bytes.fromhex(key)) == 32 and path.stat().st_mode & 0o077 == 0
    assert main(["hash-key", "--out", str(path)]) == 1
    assert path.read_text().strip() == key and "never overwritten" in capsys.readouterr().err


def test_upload_keys_the_row_hashes_with_the_key_file(columns, table, serve, tmp_path, signed, onchain):
    proxy = serve(Vault(Store(":memory:")))
    key_file = tmp_path / "row-hash.key"
    main(["hash-key", "--out", str(key_file)])
    path = write_csv(tmp_path / "clinic.csv", source_rows(columns, range(150, 250)))
    assert main(["upload", "--proxy", proxy.url, *signed, "--min-price", str(PRICE), "--csv", path,
                 *map_args(columns), "--ignore", "Patient", "--hash-key-file", str(key_file)]) == 0
    rows = normalised(table, columns, range(150, 250))
    onchain.register_as(MODEL_ID, table, projection_policy_for(table, columns))
    answer = proxy.quote(MODEL_ID, PRICE, table, list(range(1, 101)), projection_policy_for(table, columns))
    key = bytes.fromhex(key_file.read_text().strip())
    assert [a.row_hash for a in answer.accepted] == row_hashes(MODEL_ID, rows.features, rows.labels, key=key)


def test_a_malformed_key_file_is_reported_before_any_proxy_is_contacted(tmp_path, capsys, signed):
    key_file = tmp_path / "row-hash.key"
    key_file.write_text("not hex")
    path = write_csv(tmp_path / "clinic.csv", [{"a": 1}])
    code = main(["upload", "--proxy", "http://127.0.0.1:9", *signed, "--min-price", "1", "--csv", path,
                 "--map", "a=b", "--hash-key-file", str(key_file)])
    assert code == 1 and "64 hex digits" in capsys.readouterr().err


def test_upload_refuses_a_source_address_other_than_the_signing_keys(columns, serve, tmp_path, capsys, signed):
    proxy = serve(Vault(Store(":memory:")))
    path = write_csv(tmp_path / "clinic.csv", source_rows(columns, range(3)))
    code = main(["upload", "--proxy", proxy.url, *signed, "--source", "0x" + "b2" * 20, "--min-price", "1",
                 "--csv", path, *map_args(columns), "--ignore", "Patient"])
    assert code == 1 and "is not the address of the signing key" in capsys.readouterr().err
    assert proxy.health() == 0


def test_an_upload_that_fails_at_a_proxy_prints_the_upload_key_that_resumes_it(columns, serve, tmp_path, capsys,
                                                                                signed):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    live = serve(Vault(Store(":memory:")))
    path = write_csv(tmp_path / "clinic.csv", source_rows(columns, range(4)))
    rest = [*signed, "--min-price", "1", "--csv", path, *map_args(columns), "--ignore", "Patient"]
    assert main(["upload", "--proxy", live.url, "--proxy", dead, *rest]) == 1
    key = capsys.readouterr().err.split("--upload-key ")[-1].split()[0]
    assert main(["upload", "--proxy", live.url, *rest, "--upload-key", key, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {live.url: [1, 2, 3, 4]}  # the same rows, not stored twice
    assert live.health() == 4
