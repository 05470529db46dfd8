"""The kubeconfig-sized YAML reader."""

from __future__ import annotations

import pytest

from adapters.targets import miniyaml


def test_kubeconfig_shapes() -> None:
    text = """
apiVersion: v1
clusters:
  - cluster:
      certificate-authority-data: LS0t  # trailing comment
      server: "https://10.0.0.1:6443"
    name: prod
contexts:
- context: {}
  name: empty
- name: main
  context:
    cluster: prod
    user: 'bot''s user'
preferences: {}
users: []
current-context: main
"""
    data = miniyaml.loads(text)
    assert data["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    assert data["clusters"][0]["cluster"]["certificate-authority-data"] == "LS0t"
    assert data["contexts"][0] == {"context": {}, "name": "empty"}
    assert data["contexts"][1]["context"]["user"] == "bot's user"
    assert data["users"] == [] and data["preferences"] == {} and data["current-context"] == "main"
    assert miniyaml.loads('{"a": [1]}') == {"a": [1]}


def test_garbage_is_an_error() -> None:
    with pytest.raises(ValueError):
        miniyaml.loads("a: 1\n  b: 2\n")
