"""An encrypted SSH client key is opened with the passphrase from ``ssh.passphrase_env``
(a credential: redacted, never in a child's environment), against a real SSH server."""

from __future__ import annotations

from pathlib import Path

import pytest

from quarterdeck.core.errors import ActionError
from tests.actions.test_ssh import call, settings_for
from tests.servers import SSHKeys, SSHServer

PHRASE = "correct-horse-battery-staple"


def test_an_encrypted_key_opens_with_the_configured_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = SSHKeys.generate(tmp_path / "keys")
    # encrypted PKCS#8 (opened without bcrypt, which OpenSSH's own format needs)
    keys.client_key.write_private_key(
        str(keys.client_key_path), format_name="pkcs8-pem", passphrase=PHRASE
    )
    assert "ENCRYPTED" in keys.client_key_path.read_text()
    (tmp_path / "remote").mkdir()
    with SSHServer(keys, cwd=tmp_path / "remote") as server:
        settings = settings_for(keys, [server])
        settings.ssh.passphrase_env = "DEPLOY_KEY_PHRASE"
        monkeypatch.delenv("DEPLOY_KEY_PHRASE", raising=False)
        monkeypatch.delenv("QUARTERDECK_SSH_PASSPHRASE", raising=False)
        with pytest.raises(ActionError, match="passphrase_env"):
            call("ssh.run", {"hosts": [server.host], "command": "true"}, tmp_path, settings)
        monkeypatch.setenv("DEPLOY_KEY_PHRASE", PHRASE)
        out, _ = call("ssh.run", {"hosts": [server.host], "command": "echo in"}, tmp_path, settings)
        assert out["exit_codes"] == {server.host: 0}
